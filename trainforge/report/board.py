"""The report's leaderboard: a table that fits the page, every column one click away, and why
the first row is the model the run picked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trainforge.leaderboard import COST_COLUMNS
from trainforge.report.tables import COST_FORMATS, e, number, table

OTHER_METRICS = 2  # scores shown beside the primary one; the rest are in the folded table
HEADERS = {
    "rank": "#",
    "fit_seconds": "fit",
    "predict_ms_per_1k": "predict per 1k rows",
    "size_kb": "size",
}
_NOT_SCORES = ("metric", "footing", "best_single", "picked")


def leaderboard(run: Path, manifest: dict) -> str:
    """The leaderboard section of the run folder ``run``; empty when it has no leaderboard.

    The page shows rank, candidate, the primary metric (and its spread over folds), the next
    two metrics, the costs, and the status where a candidate did not finish; leaderboard.csv
    as a whole is folded below it.
    """
    path = run / "leaderboard.csv"
    if not path.is_file():
        return ""
    board = pd.read_csv(path)
    short = board[compact_columns(board, manifest.get("primary_metric"))]
    headers = dict(HEADERS, **{c: "± std" for c in short.columns if c.endswith("_std")})
    return "\n".join(
        [
            table(short, COST_FORMATS, headers, css="board"),
            picked(manifest.get("selection")),
            "<details><summary>every column (leaderboard.csv)</summary>"
            f"{table(board, COST_FORMATS)}</details>",
        ]
    )


def compact_columns(board: pd.DataFrame, primary: str | None) -> list[str]:
    """The columns the page shows of ``board``, in its order."""
    scores = [
        c
        for c in board.columns
        if c not in ("rank", *COST_COLUMNS)
        and not c.endswith("_std")
        and pd.api.types.is_numeric_dtype(board[c])
    ]
    if primary not in scores:
        primary = scores[0] if scores else None
    shown = ["rank", "candidate"]
    if primary:
        shown += [primary, f"{primary}_std"]
        shown += [c for c in scores if c != primary][:OTHER_METRICS]
    shown += COST_COLUMNS
    if "status" in board and (board["status"] != "ok").any():
        shown.append("status")
    return [c for c in shown if c in board.columns]


def picked(selection: dict | None) -> str:
    """One line on why the first row was picked, from the manifest's ``selection``: the
    cross-fitted scores of the best single model and of each ensemble. Empty without one."""
    if not isinstance(selection, dict) or not selection.get("picked"):
        return ""
    metric, chosen = selection.get("metric", "score"), selection["picked"]
    single = selection.get("best_single") or {}
    combined = {
        k: v for k, v in selection.items() if k not in _NOT_SCORES and isinstance(v, (int, float))
    }
    if chosen == single.get("candidate"):
        own = single.get("cross_fitted")
        others = [f"{number(float(v))} for {k}" for k, v in combined.items()]
        text = f"Picked: {chosen}, the best single model"
    else:
        own = combined.get(chosen)
        others = [
            f"{number(float(single['cross_fitted']))} for the best single model, "
            f"{single.get('candidate')}"
        ] if "cross_fitted" in single else []  # fmt: skip
        others += [f"{number(float(v))} for {k}" for k, v in combined.items() if k != chosen]
        text = f"Picked: {chosen}"
    if isinstance(own, (int, float)) and others:
        text += f" (cross-fitted {metric} {number(float(own))} against {'; '.join(others)})"
    footing = selection.get("footing")
    note = f"Each figure is {footing}." if footing else ""
    if chosen != single.get("candidate"):
        note += " A combined model, when one is built, is handed back over a single one."
    note = f' <span class="muted">{e(note.strip())}</span>' if note else ""
    return f"<p>{e(text)}{note}</p>"
