"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each function takes plain frames read from the run folder and returns a PNG as base64 text, or
None when there is nothing to draw. Titles that would reach past a figure's edges (long
candidate names) are wrapped before it is saved, so none is clipped.
"""

from __future__ import annotations

import base64
import io
import textwrap

import numpy as np
import pandas as pd

MAX_CLASSES = 10  # one-vs-rest curves and confusion matrices beyond this are unreadable
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=90, layout="constrained")
    FigureCanvasAgg(figure)  # measures text for fit_titles
    return figure


def _png(figure) -> str:
    """The figure as base64 PNG. Once ``fit_titles`` has laid it out for its final titles,
    that layout is kept for the file instead of being made again (a report on car: 5.2 -> 3.9
    s; 11 of 13 pictures byte for byte the same, the other two the same to the eye)."""
    if fit_titles(figure):
        import matplotlib

        unset = {"figure.autolayout": False, "figure.constrained_layout.use": False}
        with matplotlib.rc_context(unset):  # None means the rc's engine otherwise
            figure.set_layout_engine(None)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # constrained layout already keeps all inside
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def fit_titles(figure, tries: int = 3) -> bool:
    """Wrap each title wider than the room its anchor leaves inside the figure.

    Each try lays the figure out again, since a title of two lines moves the axes. Returns
    whether the last layout was made with the titles as they end (no try left one wrapped
    after it), so that drawing the figure need not lay it out again.
    """
    for _ in range(tries):
        figure.draw_without_rendering()
        renderer = figure.canvas.get_renderer()
        wrapped = False
        for text in _titles(figure):
            extent = text.get_window_extent(renderer)
            room = _room(text.get_horizontalalignment(), extent, figure.bbox) - 4
            if extent.width <= room:
                continue
            longest = max(len(line) for line in text.get_text().splitlines())
            chars = max(8, int(longest * room / extent.width))
            text.set_text(textwrap.fill(" ".join(text.get_text().split()), chars))
            wrapped = True
        if not wrapped:
            return True
    return False


def _titles(figure) -> list:
    texts = [figure._suptitle] if figure._suptitle is not None else []
    for ax in figure.axes:
        texts += [ax.title, ax._left_title, ax._right_title]
    return [t for t in texts if t.get_text()]


def _room(align: str, extent, box) -> float:
    """How wide a text anchored where ``extent`` sits can be without leaving ``box``."""
    if align == "left":
        return box.x1 - extent.x0
    if align == "right":
        return extent.x1 - box.x0
    middle = (extent.x0 + extent.x1) / 2
    return 2 * min(middle - box.x0, box.x1 - middle)


def _log_y(ax) -> None:
    """A log y-axis labelled 0.03, 0.1, 0.6 rather than 3x10^-2 (a loss spans a decade or two)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(Plain())
    ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False))


def _on_log_scale(measure: str, values: list) -> bool:
    """Losses (and error metrics) fall by orders of magnitude over boosting rounds: on a linear
    axis everything after the first rounds is a flat line."""
    from trainforge.metrics import METRICS

    lower_is_better = measure in METRICS and not METRICS[measure].greater_is_better
    if not (lower_is_better or "loss" in measure):
        return False
    numbers = pd.concat(values).dropna()
    return bool(len(numbers)) and bool((numbers > 0).all() and np.isfinite(numbers).all())


def learning_curves(name: str, history: pd.DataFrame) -> str | None:
    """Training and validation values per epoch (or round), one panel per measure."""
    if history.empty:
        return None
    step = next((c for c in ("epoch", "round") if c in history), None)
    x = history[step] if step else np.arange(1, len(history) + 1)
    measures = [c for c in history.columns if c != step and not c.startswith("val_")]
    measures += [c[4:] for c in history.columns if c.startswith("val_") and c[4:] not in measures]
    measures = [
        m
        for m in measures
        if pd.api.types.is_numeric_dtype(history.get(m, history.get(f"val_{m}")))
    ]
    if not measures:
        return None
    figure = _figure(4.2 * min(len(measures), 3), 3.2)
    axes = figure.subplots(1, min(len(measures), 3), squeeze=False)[0]
    for ax, measure in zip(axes, measures):
        if measure in history:
            ax.plot(x, history[measure], label=f"training {measure}", color=COLORS[0])
        if f"val_{measure}" in history:
            ax.plot(x, history[f"val_{measure}"], label=f"validation {measure}", color=COLORS[1])
        drawn = [history[c] for c in (measure, f"val_{measure}") if c in history]
        if _on_log_scale(measure, drawn):
            _log_y(ax)
            ax.set_ylabel(f"{measure} (log scale)")
        ax.set_xlabel("epoch / round")
        ax.set_title(f"{name}: {measure}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _png(figure)


def confusion_matrix(frame: pd.DataFrame, classes: list[str], name: str) -> str | None:
    from sklearn.metrics import confusion_matrix as counts

    if not 1 < len(classes) <= MAX_CLASSES:
        return None
    matrix = counts(frame["y_true"], frame["y_pred"], labels=classes)
    figure = _figure(4.8, 4.2)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=45, ha="right")
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{name}: confusion matrix (validation)")
    limit = matrix.max() / 2 if matrix.size else 0
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if matrix[i, j] > limit else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    return _png(figure)


def _scored(frames: dict[str, pd.DataFrame], positive: str):
    for name, frame in frames.items():
        column = f"proba_{positive}"
        if column in frame:
            yield name, (frame["y_true"] == positive).to_numpy(), frame[column].to_numpy()


def roc_curves(frames: dict[str, pd.DataFrame], positive: str, title: str) -> str | None:
    """ROC curves of ``positive`` against the rest, one line per entry of ``frames``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = _figure(5.0, 4.2)
    ax = figure.subplots()
    drawn = 0
    for index, (name, truth, score) in enumerate(_scored(frames, positive)):
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        auc = roc_auc_score(truth, score)
        ax.plot(fpr, tpr, color=COLORS[index % len(COLORS)], label=f"{name} (AUC {auc:.3f})")
        drawn += 1
    if not drawn:
        return None
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return _png(figure)


def pr_curves(frames: dict[str, pd.DataFrame], positive: str, title: str) -> str | None:
    """Precision-recall curves of ``positive``, one line per entry of ``frames``."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure = _figure(5.0, 4.2)
    ax = figure.subplots()
    drawn, rate = 0, None
    for index, (name, truth, score) in enumerate(_scored(frames, positive)):
        if not truth.any():
            continue
        precision, recall, _ = precision_recall_curve(truth, score)
        ap = average_precision_score(truth, score)
        ax.plot(recall, precision, color=COLORS[index % len(COLORS)], label=f"{name} (AP {ap:.3f})")
        drawn, rate = drawn + 1, truth.mean()
    if not drawn:
        return None
    ax.axhline(rate, ls="--", color="grey", lw=1, label=f"chance ({rate:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    return _png(figure)


def calibration(frames: dict[str, pd.DataFrame], positive: str, title: str) -> str | None:
    """Reliability diagram: mean predicted probability against the observed rate, per bin."""
    from sklearn.calibration import calibration_curve

    figure = _figure(5.0, 4.2)
    ax = figure.subplots()
    drawn = 0
    for index, (name, truth, score) in enumerate(_scored(frames, positive)):
        if truth.all() or not truth.any():
            continue
        observed, predicted = calibration_curve(truth, score, n_bins=10, strategy="quantile")
        ax.plot(
            predicted, observed, marker="o", ms=3, color=COLORS[index % len(COLORS)], label=name
        )
        drawn += 1
    if not drawn:
        return None
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    ax.set_xlabel(f"mean predicted probability of {positive}")
    ax.set_ylabel(f"observed share of {positive}")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return _png(figure)


def predicted_vs_true(frame: pd.DataFrame, name: str) -> str | None:
    if frame.empty:
        return None
    figure = _figure(5.0, 4.4)
    ax = figure.subplots()
    ax.scatter(frame["y_true"], frame["y_pred"], s=8, alpha=0.5, color=COLORS[0])
    low = float(min(frame["y_true"].min(), frame["y_pred"].min()))
    high = float(max(frame["y_true"].max(), frame["y_pred"].max()))
    ax.plot([low, high], [low, high], ls="--", color="grey", lw=1)
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(f"{name}: predicted vs true (validation)")
    return _png(figure)


def residuals(frame: pd.DataFrame, name: str) -> str | None:
    if frame.empty:
        return None
    error = frame["y_true"] - frame["y_pred"]
    figure = _figure(9.0, 3.6)
    left, right = figure.subplots(1, 2)
    left.scatter(frame["y_pred"], error, s=8, alpha=0.5, color=COLORS[0])
    left.axhline(0, ls="--", color="grey", lw=1)
    left.set_xlabel("predicted value")
    left.set_ylabel("residual (true - predicted)")
    left.set_title(f"{name}: residuals")
    right.hist(error, bins=30, color=COLORS[0])
    right.set_xlabel("residual")
    right.set_ylabel("rows")
    right.set_title("residual distribution")
    return _png(figure)


def importance(frame: pd.DataFrame, name: str, top: int = 20) -> str | None:
    if frame.empty:
        return None
    shown = frame.head(top).iloc[::-1]
    figure = _figure(6.0, 0.8 + 0.28 * len(shown))
    ax = figure.subplots()
    ax.barh(
        shown["feature"].astype(str),
        shown["importance_mean"],
        xerr=shown["importance_std"],
        color=COLORS[0],
    )
    metric = frame["metric"].iloc[0] if "metric" in frame else "score"
    ax.set_xlabel(f"drop in {metric} when the column is shuffled")
    ax.set_title(f"{name}: permutation importance (validation)")
    return _png(figure)


def search_history(trials: pd.DataFrame, metric: str, greater: bool) -> str | None:
    """Each trial's validation score against the budget time it finished at, one colour per
    study, with the best score so far as a step line."""
    done = trials.dropna(subset=["value", "finished_seconds"]).sort_values("finished_seconds")
    if done.empty:
        return None
    figure = _figure(7.0, 4.0)
    ax = figure.subplots()
    for index, (study, rows) in enumerate(done.groupby("study", sort=False)):
        pruned = rows["state"] == "PRUNED"
        color = COLORS[index % len(COLORS)]
        ax.scatter(
            rows["finished_seconds"][~pruned],
            rows["value"][~pruned],
            color=color,
            s=18,
            label=str(study),
        )
        ax.scatter(
            rows["finished_seconds"][pruned], rows["value"][pruned], color=color, s=18, marker="x"
        )
    best = done["value"].cummax() if greater else done["value"].cummin()
    ax.step(done["finished_seconds"], best, where="post", color="black", lw=1.2, label="best")
    ax.set_xlabel("budget seconds when the trial finished (x: pruned)")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("search history")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(figure)


def search_importance(importance: dict[str, dict[str, float]]) -> str | None:
    """fANOVA importance of each searched parameter, one panel per study."""
    studies = [(name, scores) for name, scores in importance.items() if scores]
    if not studies:
        return None
    figure = _figure(4.2 * min(len(studies), 3), 0.9 + 0.3 * max(len(s) for _, s in studies))
    axes = figure.subplots(1, min(len(studies), 3), squeeze=False)[0]
    for ax, (name, scores) in zip(axes, studies):
        ordered = sorted(scores.items(), key=lambda item: item[1])
        ax.barh([k for k, _ in ordered], [v for _, v in ordered], color=COLORS[0])
        ax.set_title(f"{name}: parameter importance")
        ax.set_xlim(0, 1)
    return _png(figure)
