"""Progress and tables on the terminal: rich when it is one, plain lines otherwise.

Progress goes to standard error and tables to standard output. Every line is made to fit: a
progress line is short (and cut to the terminal's width while it updates in place), and a table
is as wide as the terminal, or, when standard output is a pipe or a file, as wide as ``COLUMNS``
says (100 when unset) and never narrower than its widest row, so that each row stays one line.
"""

from __future__ import annotations

import io
import math
import os
import sys
import threading
import time

import pandas as pd
from rich.markup import escape  # messages hold [brackets]: pip extras, indices

PIPED_WIDTH = 100  # a table's width on a pipe or in a file, when COLUMNS does not say
DEFAULT_PATIENCE = 10  # early stopping's patience (the MLP's) when the logs do not give one
MONITORED = ("val_loss", "fid", "loss")  # what early stopping watches, first found; lower wins


class ConsoleObserver:
    """Shows which candidate is training, its epochs (or boosting rounds) as they pass, each
    one's score, and the run's closing steps.

    On a terminal the current candidate's line updates in place (rich); otherwise each event is
    a plain log line, with epochs at most every ``PLAIN_EVERY`` seconds (plus the first and the
    last) so that long trainings do not flood a log file.

    An epoch's line is short: ``[3/9] mlp epoch 12/200 loss 0.4123 val 0.4456 4.1s eta ~6.2s``.
    Its ETA is the time to the epoch where early stopping would end the fit if the monitored
    loss does not improve again (the best epoch plus the patience, at most the last epoch), at
    the pace of the epochs so far; each improvement pushes it out again. A bagged candidate's
    boosting rounds name their fold (``[4] lightgbm fold 2/5 round 120/3000 ...``; folds can
    fit at once, each with its own pace and ETA). Under a time budget the number of candidates
    is not known in advance, so they are counted as ``[3]``.

    Args:
        quiet: show only notices and warnings.
        plain: plain lines even on a terminal (``--log-format plain``).
        epochs: show epochs as they pass (the Python API shows them only when verbose).
    """

    PLAIN_EVERY = 5.0
    LIVE_EVERY = 0.1  # at most ten redraws a second: boosting rounds take milliseconds

    def __init__(self, quiet: bool = False, plain: bool = False, epochs: bool = True):
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.epochs = epochs
        self.live = self.console.is_terminal and not plain
        self.console.soft_wrap = not self.live  # one event, one line, in a log file
        self._status = None
        self._stage: str | None = None  # the closing step on show, if any
        self._label = ""
        self._counted: tuple[int, str] = (0, "")
        self._last_total: int | None = None
        self._started = self._run_started = time.monotonic()
        self._fits: dict[int, FitPace] = {}  # by fold (0: not bagged, or epochs)
        self._shown_steps = False  # a step line of the current candidate was printed
        self._lock = threading.Lock()  # bagged folds report rounds from their own threads
        self._last_line = self._last_update = 0.0

    def run_started(self, run_id: str, path: str) -> None:
        self._run_started = time.monotonic()
        if not self.quiet:
            self.console.print(f"run {run_id}  ({path})")

    def notice(self, message: str) -> None:
        self.console.print(f"[yellow]note:[/] {escape(message)}")

    def warning(self, message: str) -> None:
        self.console.print(f"[bold yellow]warning:[/] {escape(message)}")

    def candidate_started(self, index: int, total: int, name: str) -> None:
        self._started = time.monotonic()
        self._fits, self._shown_steps = {}, False
        count = self._count(index, total)
        self._counted = (index, count)
        self._label = f"{count} {name}"
        if self.quiet:
            return
        after = f" ({total - index} remaining after it)" if "/" in count else ""
        self._show(f"{count} training {name}{after}")

    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        self._step("epoch", epoch, total, metrics)

    def round_end(self, name: str, round_: int, total: int, metrics: dict) -> None:
        """A boosting round: shown like an epoch (``[2/3] lightgbm round 120/2000 val ...``),
        with its fold when the logs name one (``fold``, ``folds``)."""
        self._step("round", round_, total, metrics)

    def stage(self, text: str) -> None:
        """Say which closing step of the run is under way, such as ``permutation importance``,
        ``writing the report`` or ``logging to MLflow``: on a terminal a spinner with ``text``
        until the next event, otherwise one line. A step still on show when the run finishes
        (the MLflow upload comes after the console hears of the end) is left as a line."""
        if self.quiet:
            return
        self._show(f"{text} (run {_duration(time.monotonic() - self._run_started)})")
        self._stage = text

    def candidate_finished(self, index: int, total: int, result) -> None:
        self._stop()
        if self.quiet:
            return
        count = self._counted[1] if self._counted[0] == index else self._count(index, total)
        if result.status != "ok":
            error = escape(str(result.error))
            self.console.print(f"{count} {result.name}: [red]failed[/] ({error})")
            return
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(result.metrics.items())[:2])
        if (result.trial or {}).get("state") == "PRUNED":  # scores of a fit stopped early
            shown = f"pruned ({shown} when stopped; not an ensemble member)"
        self.console.print(f"{count} {result.name}: {shown}  (fit {result.fit_seconds:.1f}s)")

    def run_finished(self, status: str, path: str) -> None:
        stage = self._stage
        self._stop()
        if stage and self.live and not self.quiet:
            self.console.print(f"{escape(stage)} ...")

    # -- the one line that changes --------------------------------------------------------

    def _count(self, index: int, total: int) -> str:
        """``[3/9]``, or ``[3]`` where the total only counts what has started: a time budget
        reports ``3 of 3`` for each new candidate, while a planned last one comes after a
        candidate that announced the same total."""
        planned = total > index or (total == index and total == self._last_total)
        self._last_total = total
        return f"[{index}/{total}]" if planned else f"[{index}]"

    def _step(self, word: str, step: int, total: int, metrics: dict) -> None:
        if self.quiet or not self.epochs:
            return
        fold = int(metrics.get("fold") or 0)
        label = f"{self._label} fold {fold}/{metrics.get('folds')}" if fold else self._label
        with self._lock:
            now = time.monotonic()
            fit = self._fits.get(fold)
            if fit is None:
                fit = self._fits[fold] = FitPace(now if fold else self._started)
            fit.record(step, metrics, now)
            elapsed = now - fit.started if fold else now - self._started
            text = progress_text(label, word, step, total, metrics, elapsed, fit.eta(step, total))
            if self._status is not None:
                if now - self._last_update >= self.LIVE_EVERY or step == total:
                    self._last_update = now
                    self._status.update(self._fitted(text))
            elif self._print_step(step, total, now):
                self.console.print(escape(text))

    def _print_step(self, step: int, total: int, now: float) -> bool:
        """Whether a plain log shows this step: the candidate's first (not each fold's: a log
        got five "round 1/3000" lines for one bagged LightGBM and nothing after them), the
        last, and one every ``PLAIN_EVERY`` seconds."""
        if self._shown_steps and step != total and now - self._last_line < self.PLAIN_EVERY:
            return False
        self._shown_steps, self._last_line = True, now
        return True

    def _show(self, text: str) -> None:
        """A new line of progress: a spinner on a terminal, else a log line."""
        self._stop()
        if self.live:
            self._status = self.console.status(self._fitted(text))
            self._status.start()
        else:
            self.console.print(escape(text))

    def _stop(self) -> None:
        self._stage = None
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _fitted(self, text: str) -> str:
        """``text`` cut to the terminal's width (less the spinner's), as rich markup."""
        room = max(self.console.width - 3, 10)
        return escape(text if len(text) <= room else text[: room - 3] + "...")


class FitPace:
    """How far one fit has come: its pace per epoch and the epoch where early stopping would
    end it. Epochs that count again from the start (the next fold's fit) start it over."""

    def __init__(self, now: float):
        self.started = self.last_time = now
        self.first: int | None = None
        self.last = 0
        self.best, self.best_step = math.inf, 0
        self.patience: int | None = None
        self.pace = 0.0

    def record(self, step: int, metrics: dict, now: float) -> None:
        if self.first is None or step <= self.last:
            self.started = self.last_time if self.first is not None else self.started
            self.first, self.best, self.best_step = step, math.inf, 0
        self.last, self.last_time = step, now
        self.pace = (now - self.started) / (step - self.first + 1)
        monitored = next((metrics[k] for k in MONITORED if _finite(metrics.get(k))), None)
        if monitored is not None:
            self.patience = int(metrics.get("patience") or DEFAULT_PATIENCE)
            if monitored < self.best:
                self.best, self.best_step = float(monitored), step

    def eta(self, step: int, total: int) -> float | None:
        """Seconds to the likely last epoch; None when there is nothing left or no end known."""
        end = total if total > 0 else None
        if self.best_step and self.patience:
            stop = self.best_step + self.patience
            end = stop if end is None else min(end, stop)
        if end is None or end <= step or self.pace <= 0:  # no pace yet: a fold's first round
            return None
        return self.pace * (end - step)


def progress_text(
    label: str, word: str, step: int, total: int, metrics: dict, elapsed: float, eta
) -> str:
    """``[3/9] mlp epoch 12/200 loss 0.4123 val 0.4456 4.1s eta ~6.2s``."""
    count = f"{step}/{total}" if total > 0 else str(step)
    parts = [f"{label} {word} {count}", epoch_text(metrics), _duration(elapsed)]
    if eta is not None:
        parts.append(f"eta ~{_duration(eta)}")
    return " ".join(p for p in parts if p)


def epoch_text(metrics: dict) -> str:
    """``loss 0.4321 val 0.4567`` from an epoch's logs: the training and validation loss, or
    the first two numbers of logs without them (a GAN's)."""
    names = {"loss": "loss", "val_loss": "val"}
    shown = [(names[k], metrics[k]) for k in names if _number(metrics.get(k))]
    if not shown:
        skip = ("epoch", "round", "patience", "max_rounds", "fold", "folds")
        shown = [(k, v) for k, v in metrics.items() if k not in skip and _number(v)][:2]
    return " ".join(f"{k} {_short(float(v))}" for k, v in shown)


def _short(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value) -> bool:
    return _number(value) and math.isfinite(value)


# -- tables -------------------------------------------------------------------------------


def print_table(
    frame: pd.DataFrame,
    title: str | None = None,
    formats: dict | None = None,
    shorten: str | None = None,
) -> None:
    """A frame as a table on stdout (rich on a terminal, aligned text otherwise).

    Args:
        formats: how to write the cells of some columns, as format strings (e.g.
            ``{"clusters": "{:.0f}"}``) or functions; other numbers get 4 decimals, or
            thousands separators from 1,000 up.
        shorten: a text column whose cells are cut so that the table fits the output's width.
    """
    formats = {**COLUMN_FORMATS, **(formats or {})}
    if shorten in frame.columns:
        frame = _shortened(frame, shorten, title, formats)
    table = _table(frame, title, formats)
    _output(table).print(table)


def output_width() -> int:
    """The width tables are made to fit: the terminal's, else ``COLUMNS``, else 100."""
    if sys.stdout.isatty():
        return _output(None).width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


def _output(table):
    """The console for stdout: the terminal's width, or on a pipe the output width widened to
    the table's own, so that no row is wrapped onto a second line."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False)
    width = output_width()
    if table is not None:
        width = max(width, _natural_width(table))
    return Console(highlight=False, width=width)


def _natural_width(table) -> int:
    from rich.console import Console

    return Console(width=10_000, file=io.StringIO()).measure(table).maximum


def _table(frame: pd.DataFrame, title: str | None, formats: dict):
    from rich.table import Table

    table = Table(title=title, show_edge=False, header_style="bold")
    cells = [
        [_cell(v, formats.get(c)) for c, v in zip(frame.columns, row)]
        for row in frame.itertuples(index=False)
    ]
    for i, column in enumerate(frame.columns):
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        # numbers and one-word names (candidates, run ids) are never cut; on a narrow terminal
        # the columns of several words (settings, reasons) wrap instead
        whole = numeric or not any(" " in row[i] for row in cells)
        table.add_column(str(column), justify="right" if numeric else "left", no_wrap=whole)
    for row in cells:
        table.add_row(*map(escape, row))
    return table


def _shortened(frame: pd.DataFrame, column: str, title: str | None, formats: dict):
    """``frame`` with the cells of ``column`` cut to the room the other columns leave."""
    without = frame.assign(**{column: ""})
    room = output_width() - _natural_width(_table(without, title, formats)) + len(column)
    room = max(room, len(column), 12)
    return frame.assign(**{column: [cut(str(v), room) for v in frame[column]]})


def cut(text: str, room: int) -> str:
    """``text`` on one line, cut to ``room`` characters with ``...`` where it was cut."""
    text = " ".join(text.split())
    return text if len(text) <= room else text[: max(room - 3, 1)] + "..."


def _cell(value, how) -> str:
    if callable(how):
        return how(value)
    return _fmt(value, how)


def seconds(value) -> str:
    """Seconds with one decimal: ``0.3s``, ``12.4s``; ``-`` where unknown."""
    return "-" if _missing(value) else f"{float(value):,.1f}s"


def size(kb) -> str:
    """A size in kB (KiB, as the leaderboard's ``size_kb``): ``3.9 kB``, ``194 kB``, ``1.2 MB``."""
    if _missing(kb):
        return "-"
    kb = float(kb)
    if kb < 10:
        return f"{kb:.1f} kB"
    if kb < 999.5:
        return f"{kb:.0f} kB"
    mb = kb / 1024
    return f"{mb:.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


COLUMN_FORMATS = {
    "fit_seconds": "{:.2f}",
    "predict_ms_per_1k": "{:.1f}",
    "size_kb": "{:,.0f}",
    "clusters": "{:.0f}",
}


# -- the leaderboard ----------------------------------------------------------------------

OTHER_METRICS = 2  # scores shown beside the primary one; --wide shows them all
_NOT_SCORES = ("rank", "fit_seconds", "predict_ms_per_1k", "size_kb", "clusters", "noise_fraction")
_COMPACT_HEADERS = {"rank": "#", "fit_seconds": "fit", "size_kb": "size"}


def print_leaderboard(
    board: pd.DataFrame, primary: str | None, task: str | None, wide: bool = False
) -> None:
    """The leaderboard on stdout: compact (see ``compact_leaderboard``), or with ``wide``
    every column of leaderboard.csv."""
    title = board_title(task)
    if wide:
        print_table(board, title=title)
        return
    print_table(
        compact_leaderboard(board, primary),
        title=title,
        formats={"fit": seconds, "size": size, "clusters": "{:.0f}"},
    )


def compact_leaderboard(board: pd.DataFrame, primary: str | None) -> pd.DataFrame:
    """Rank, candidate, the primary metric (and its spread over folds), the next two metrics,
    the cluster count, fit time and size, and the status where a candidate did not finish.
    The family is shown only where the candidate's name does not start with it (a stacking
    layer, a renamed candidate): ``lightgbm_2`` and ``lightgbm#t3`` are LightGBM."""
    scores = [
        c
        for c in board.columns
        if c not in _NOT_SCORES
        and not c.endswith("_std")
        and pd.api.types.is_numeric_dtype(board[c])
    ]
    if primary not in scores:
        primary = scores[0] if scores else None
    shown = ["rank", "candidate"]
    view = board.copy()
    if "family" in board.columns and "candidate" in board.columns:
        implied = [str(n).startswith(str(f)) for n, f in zip(board["candidate"], board["family"])]
        view["family"] = ["" if same else f for same, f in zip(implied, board["family"])]
        shown += [] if all(implied) else ["family"]
    if primary:
        shown += [primary, f"{primary}_std"] + [c for c in scores if c != primary][:OTHER_METRICS]
    shown += ["clusters", "fit_seconds", "size_kb"]
    if "status" in board.columns and (board["status"].astype(str) != "ok").any():
        shown.append("status")
    view = view[[c for c in shown if c in view.columns]]
    return view.rename(columns={**_COMPACT_HEADERS, f"{primary}_std": "± std"})


def print_runs(runs: list, wide: bool = False) -> None:
    """``trainforge runs``: one row per ``(folder, manifest)``, newest first.

    Compact: the run, its status, best candidate and score, and why a failed run failed, cut
    to the room left (``trainforge show RUN`` gives it in full). With ``wide`` the task, the
    creation time and the whole error as well.
    """
    rows = []
    for path, manifest in runs:
        best = manifest.get("best") or {}
        metric = manifest.get("primary_metric")
        score = best.get(metric) if metric else None
        rows.append(
            {
                "run": path.name,
                "status": manifest.get("status"),
                "task": manifest.get("task", "-"),
                "best": best.get("candidate", "-"),
                "metric": metric or "-",
                "score": float(score) if _number(score) else math.nan,
                "created": manifest.get("created", "-"),
                "reason": str(manifest.get("error") or ""),  # "...; see X": show has it
            }
        )
    frame = pd.DataFrame(rows)
    if not (frame["reason"] != "").any():
        frame = frame.drop(columns="reason")
    if wide:
        print_table(frame.rename(columns={"reason": "error"}))
        return
    frame = frame.drop(columns=["task", "created"])
    if "reason" in frame.columns:
        frame["reason"] = [r.split("; see ")[0] for r in frame["reason"]]
    metrics = frame["metric"].unique()
    if len(metrics) == 1 and metrics[0] != "-":  # one metric for all: it heads the scores
        frame = frame.drop(columns="metric").rename(columns={"score": metrics[0]})
    print_table(frame, shorten="reason")


def board_title(task: str | None) -> str:
    """Supervised runs score on validation rows; clustering and reduction on the data itself."""
    if task in ("clustering", "reduction"):
        return "leaderboard (scored on the training rows)"
    return "leaderboard (validation)"


def _fmt(value, template: str | None = None) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if template:
            return template.format(value)
        if value != 0 and abs(value) < 0.001:
            return f"{value:.3g}"  # four decimals would show 0.0000
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
