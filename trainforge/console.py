"""Progress and tables on the terminal: rich when it is one, plain lines otherwise."""

from __future__ import annotations

import math
import sys

import pandas as pd


class ConsoleObserver:
    """Shows which candidate is training, how many remain, and each one's score.

    Args:
        quiet: show only notices.
    """

    def __init__(self, quiet: bool = False):
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self._status = None

    def run_started(self, run_id: str, path: str) -> None:
        if not self.quiet:
            self.console.print(f"run {run_id}  ({path})")

    def notice(self, message: str) -> None:
        self.console.print(f"[yellow]note:[/] {message}")

    def candidate_started(self, index: int, total: int, name: str) -> None:
        if self.quiet:
            return
        text = f"[{index}/{total}] training {name} ({total - index} remaining after it)"
        if self.console.is_terminal:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self.console.print(text)

    def candidate_finished(self, index: int, total: int, result) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self.quiet:
            return
        if result.status != "ok":
            self.console.print(f"[{index}/{total}] {result.name}: [red]failed[/] ({result.error})")
            return
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(result.metrics.items())[:2])
        self.console.print(
            f"[{index}/{total}] {result.name}: {shown}  (fit {result.fit_seconds:.1f}s)"
        )


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


COLUMN_FORMATS = {"fit_seconds": "{:.2f}", "predict_ms_per_1k": "{:.1f}", "size_kb": "{:,.0f}"}


def _fmt(value, template: str | None = None) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if template:
            return template.format(value)
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
