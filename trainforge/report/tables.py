"""Numbers written for people, and the HTML tables of the report.

Scores keep four decimals so a column of them lines up; costs are rounded to what a reader can
tell apart ("194 kB", "1.2 MB", "39 s", "2m 32s", "42 ms").
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping

import pandas as pd

from trainforge.console import size  # one formatting for sizes, terminal and report


def number(value) -> str:
    """A score or any other value: four decimals, thousands separated, "-" for missing."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 0.001:
        return f"{value:.3g}"
    return f"{value:.4f}"


def duration(seconds: float) -> str:
    """Seconds as "0.01 s", "1.2 s", "39 s", "2m 32s" or "2h 03m"."""
    if _missing(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def milliseconds(ms: float) -> str:
    """Milliseconds with two significant digits below 10: "0.012 ms", "3.3 ms", "42 ms"."""
    if _missing(ms):
        return "-"
    if ms < 1:
        return f"{ms:.2g} ms"
    if ms < 10:
        return f"{ms:.1f} ms"
    return f"{ms:,.0f} ms"


# How the leaderboard's cost columns (trainforge.leaderboard.COST_COLUMNS) are written.
COST_FORMATS: dict[str, Callable[[float], str]] = {
    "fit_seconds": duration,
    "predict_ms_per_1k": milliseconds,
    "size_kb": size,
}


def table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable] | None = None,
    headers: Mapping[str, str] | None = None,
    css: str = "",
) -> str:
    """An HTML table of ``frame``, numbers right-aligned.

    Args:
        formats: how to write the cells of some columns (default: ``number``).
        headers: what to call some columns (default: their names).
        css: class of the table element.

    Returns:
        The table inside a box that scrolls sideways should the table be wider than the page.
    """
    formats, headers = formats or {}, headers or {}
    aligns = [_align(frame[c]) for c in frame.columns]
    head = "".join(
        f'<th class="{a}">{e(headers.get(c, c))}</th>' for c, a in zip(frame.columns, aligns)
    )
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="{a}">{e(formats.get(c, number)(v))}</td>'
            for c, a, v in zip(frame.columns, aligns, row)
        )
        rows.append(f"<tr>{cells}</tr>")
    attribute = f' class="{css}"' if css else ""
    return f'<div class="wide"><table{attribute}><tr>{head}</tr>{"".join(rows)}</table></div>'


def e(value) -> str:
    """``value`` as HTML text."""
    return html.escape(str(value))


def _align(column: pd.Series) -> str:
    return "" if pd.api.types.is_numeric_dtype(column) else "l"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
