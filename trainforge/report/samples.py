"""The report's section for generation runs: what each generator made, and how far it is from
the real rows kept aside (trainforge.generation.scores)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd

from trainforge.report.tables import e, table

MEANINGS = (
    "two-sample AUC: how well a classifier tells generated rows from real ones kept aside "
    "(0.5: it cannot; 1: always); column distance: per column, the Kolmogorov-Smirnov "
    "statistic (numbers) or total variation distance (categories), 0 is identical; "
    "correlation difference: mean absolute difference of the columns' correlations; utility "
    "ratio: a model trained on generated rows scored on real rows, over one trained on real "
    "rows (1: as useful)."
)


def generated_samples(candidates: list[Path], manifest: dict) -> str:
    """Each generator's sample grid (images) or first rows (tables) and its per-column
    distances; empty for other tasks."""
    if manifest.get("task") != "generation":
        return ""
    parts = [f'<p class="muted">{e(MEANINGS)}</p>']
    for folder in candidates:
        grid, rows = folder / "samples.png", folder / "samples.csv"
        if grid.is_file():
            data = base64.b64encode(grid.read_bytes()).decode("ascii")
            parts.append(
                f'<h3>{e(folder.name)}</h3><img alt="{e(folder.name)} samples" '
                f'src="data:image/png;base64,{data}">'
            )
        elif rows.is_file():
            parts.append(f"<h3>{e(folder.name)}: its first generated rows</h3>")
            parts.append(table(pd.read_csv(rows).head(8), formats=_as_text(rows)))
        scores = folder / "scores.json"
        if scores.is_file():
            distances = {
                k.removeprefix("column_distance."): v
                for k, v in json.loads(scores.read_text()).items()
                if k.startswith("column_distance.")
            }
            if distances:
                frame = pd.DataFrame([distances])
                parts.append("<details><summary>distance per column</summary>")
                parts.append(table(frame) + "</details>")
    return "\n".join(parts)


def _as_text(rows: Path) -> dict:
    columns = pd.read_csv(rows, nrows=0).columns
    return {c: lambda v: e(str(v)) for c in columns}
