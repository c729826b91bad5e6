"""The report's input columns: the role trainforge gave each column, and the columns it dropped
and why.

Drawn from the run folder alone: the schema saved in a kept model's bundle.json, the manifest's
``data.dropped_columns`` and the notices that gave the reasons, and the spec's column roles.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from trainforge.report.tables import e, table

MANY = 40  # more rows than this (an image's pixels) are folded away behind the summary
SHOWN_CLASSES = 10
# Unlabelled runs give one notice per reason: "3 column(s) dropped (REASON): 'a', 'b'; ..."
_GROUPED = re.compile(r"^\d+ column\(s\) dropped \((?P<reason>.*?)\): (?P<names>.*); set a role")


def input_columns(run: Path, manifest: dict) -> str:
    """The section: a summary line, the columns used and the columns dropped."""
    schema = read_schema(run, manifest) or {}
    data = manifest.get("data") or {}
    dropped = [str(n) for n in schema.get("dropped", [])]
    dropped += [str(n) for n in data.get("dropped_columns") or [] if str(n) not in dropped]
    columns = schema.get("columns") or []
    if not columns and not dropped:
        return ""
    parts = [f"<p>{e(line)}</p>" for line in _summary(schema, columns, dropped)]
    if columns:
        used = pd.DataFrame(
            {
                "column": [str(c["name"]) for c in columns],
                "role": [c["role"] for c in columns],
                "distinct values": [int(c.get("levels") or 0) for c in columns],
                "expands into": [", ".join(c.get("parts") or []) for c in columns],
            }
        )
        parts.append(_folded(table(used), len(used), "columns used"))
    if dropped:
        reasons = dropped_reasons(dropped, manifest.get("notices") or [], _spec_roles(run))
        gone = pd.DataFrame({"dropped column": dropped, "why": [reasons[n] for n in dropped]})
        parts.append(_folded(table(gone), len(gone), "columns dropped"))
    return "\n".join(parts)


def read_schema(run: Path, manifest: dict) -> dict | None:
    """The schema in the best model's bundle.json, or in any kept candidate's (a run keeps a
    bounded pool of models; every candidate of a run reads its data through one schema)."""
    folder = run / "candidates"
    best = str((manifest.get("best") or {}).get("candidate") or "")
    names = [best] if best else []
    if folder.is_dir():
        names += sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != best)
    for name in names:
        path = folder / name / "model" / "bundle.json"
        if path.is_file():
            schema = json.loads(path.read_text(encoding="utf-8")).get("schema")
            if schema:
                return schema
    return None


def dropped_reasons(dropped: list[str], notices: list[str], roles: dict) -> dict[str, str]:
    """Why each dropped column was dropped: the notice that said so, or the spec's role."""
    reasons = {}
    for name in dropped:
        mark = f"column {name!r} dropped: "
        said = next((n for n in notices if n.startswith(mark)), None)
        if said:
            reasons[name] = said[len(mark) :].removesuffix("; set its role to use it")
    for notice in notices:
        grouped = _GROUPED.match(notice)
        if not grouped:
            continue
        for name in dropped:
            if name not in reasons and re.search(
                rf"(^|, ){re.escape(repr(name))}(,| and|$)", grouped["names"]
            ):
                reasons[name] = grouped["reason"]
    for name in dropped:
        if name not in reasons:
            set_in_spec = roles.get(name) == "ignore"
            reasons[name] = "its role is ignore in the spec" if set_in_spec else "see the notices"
    return reasons


def _summary(schema: dict, columns: list[dict], dropped: list[str]) -> list[str]:
    lines = []
    target, task = schema.get("target"), schema.get("task")
    if target:
        classes = [str(c) for c in schema.get("classes") or []]
        named = ", ".join(classes[:SHOWN_CLASSES])
        if len(classes) > SHOWN_CLASSES:
            named += f" and {len(classes) - SHOWN_CLASSES} more"
        lines.append(f"target {target} ({task}{': ' + named if named else ''})")
    roles = Counter(c["role"] for c in columns)
    used = f"{len(columns)} input column{'s' if len(columns) != 1 else ''}"
    if roles:
        used += ": " + ", ".join(f"{n} {role}" for role, n in roles.items())
    lines.append(f"{used}; {len(dropped)} dropped")
    return lines


def _folded(content: str, rows: int, what: str) -> str:
    if rows <= MANY:
        return content
    return f"<details><summary>all {rows} {e(what)}</summary>{content}</details>"


def _spec_roles(run: Path) -> dict:
    """Column roles set in the run's spec.yaml (``data.columns``)."""
    path = run / "spec.yaml"
    if not path.is_file():
        return {}
    import yaml

    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    columns = (spec.get("data") or {}).get("columns") or {}
    return {str(k): v for k, v in columns.items() if isinstance(v, str)}
