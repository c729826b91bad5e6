"""PNG figures of a clustering or reduction candidate, saved in its ``figures/`` folder (the
run report shows every PNG found there).

matplotlib is used through its Agg backend only: no display is needed and nothing global is
switched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_POINTS = 10_000  # scatter plots draw at most this many rows (a seeded sample)


def curve_png(path: Path, x, y, x_label: str, y_label: str, chosen=None, title: str = "") -> Path:
    """A line plot of a choice curve (k against silhouette, components against variance)."""
    figure, axes = _figure()
    axes.plot(x, y, marker="o" if len(x) <= 40 else None, markersize=3)
    if chosen is not None:
        axes.axvline(chosen, color="tab:red", linestyle="--", label=f"chosen: {chosen}")
        axes.legend()
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    return _save(figure, path)


def scatter_png(path: Path, points: np.ndarray, colours=None, title: str = "", seed: int = 0):
    """The first two columns of ``points``, coloured by ``colours`` (labels or clusters)."""
    rows = np.flatnonzero(np.isfinite(points[:, :2]).all(axis=1))
    if len(rows) > MAX_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_POINTS, replace=False))
    figure, axes = _figure()
    xy = points[rows, :2]
    if colours is None:
        axes.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.6)
    else:
        values = np.array([str(v) for v in np.asarray(colours, dtype=object)[rows]])
        names = sorted(set(values.tolist()))
        if len(names) <= 20:
            palette = _palette(len(names))
            for index, name in enumerate(names):
                group = values == name
                axes.scatter(*xy[group].T, s=4, alpha=0.7, color=palette[index], label=name)
            axes.legend(fontsize=7, markerscale=2.5, loc="best")
        else:
            codes = np.searchsorted(names, values)
            axes.scatter(xy[:, 0], xy[:, 1], c=codes, s=4, alpha=0.7, cmap="viridis")
    axes.set_xlabel("dimension 1")
    axes.set_ylabel("dimension 2")
    axes.set_title(title)
    return _save(figure, path)


def _palette(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["tab10" if n <= 10 else "tab20"](i) for i in range(n)]


def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    return figure, figure.add_subplot()


def _save(figure, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, bbox_inches="tight")
    return path
