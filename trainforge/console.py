"""Progress and tables on the terminal: rich when it is one, plain lines otherwise."""

from __future__ import annotations

import math
import sys
import time

import pandas as pd
from rich.markup import escape  # messages hold [brackets]: pip extras, indices


class ConsoleObserver:
    """Shows which candidate is training, its epochs as they pass, and each one's score.

    On a terminal the current candidate's line updates in place (rich); otherwise each event is
    a plain log line, with epochs at most every ``PLAIN_EVERY`` seconds (plus the first and the
    last) so that long trainings do not flood a log file.

    Args:
        quiet: show only notices and warnings.
        plain: plain lines even on a terminal (``--log-format plain``).
    """

    PLAIN_EVERY = 5.0

    def __init__(self, quiet: bool = False, plain: bool = False):
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.live = self.console.is_terminal and not plain
        self.console.soft_wrap = not self.live  # one event, one line, in a log file
        self._status = None
        self._label = ""
        self._started = self._run_started = time.monotonic()
        self._last_line = 0.0

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
        self._label = f"[{index}/{total}] {name}"
        if self.quiet:
            return
        text = f"[{index}/{total}] training {name} ({total - index} remaining after it)"
        if self.live:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self.console.print(text)

    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        text = f"{self._label} epoch {epoch}/{total}  {epoch_text(metrics)}  " + timing_text(
            now - self._started, now - self._run_started, epoch, total
        )
        if self._status is not None:
            self._status.update(text)
        elif epoch in (1, total) or now - self._last_line >= self.PLAIN_EVERY:
            self._last_line = now
            self.console.print(text)

    def candidate_finished(self, index: int, total: int, result) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self.quiet:
            return
        if result.status != "ok":
            error = escape(str(result.error))
            self.console.print(f"[{index}/{total}] {result.name}: [red]failed[/] ({error})")
            return
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(result.metrics.items())[:2])
        self.console.print(
            f"[{index}/{total}] {result.name}: {shown}  (fit {result.fit_seconds:.1f}s)"
        )

    def run_finished(self, status: str, path: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def epoch_text(metrics: dict) -> str:
    """``loss 0.4321  val_loss 0.4567`` from an epoch's logs (the epoch number left out)."""
    return "  ".join(
        f"{k} {_fmt(float(v))}" for k, v in metrics.items() if k != "epoch" and _number(v)
    )


def timing_text(candidate: float, run: float, epoch: int, total: int) -> str:
    """Elapsed time and the candidate's ETA (an upper bound: early stopping may end it sooner)."""
    text = f"elapsed {_duration(candidate)} (run {_duration(run)})"
    if 0 < epoch < total:
        text += f"  eta {_duration(candidate / epoch * (total - epoch))}"
    return text


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def print_table(frame: pd.DataFrame, title: str | None = None, formats: dict | None = None) -> None:
    """A frame as a table on stdout (rich on a terminal, aligned text otherwise).

    Args:
        formats: format strings by column name (e.g. ``{"size_kb": "{:,.0f}"}``); other
            numbers get 4 decimals, or thousands separators from 1,000 up.
    """
    formats = {**COLUMN_FORMATS, **(formats or {})}
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    table = Table(title=title, show_edge=False, header_style="bold")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[_fmt(v, formats.get(c)) for c, v in zip(frame.columns, row)])
    console.print(table)


COLUMN_FORMATS = {
    "fit_seconds": "{:.2f}",
    "predict_ms_per_1k": "{:.1f}",
    "size_kb": "{:,.0f}",
    "clusters": "{:.0f}",
}


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
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
