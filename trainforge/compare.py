"""``trainforge compare RUN_A RUN_B``: what differs between two runs.

Reads only the run folders (spec.yaml, manifest.json, leaderboard.csv): settings that differ,
input fingerprints, code commit and library versions, and each candidate's scores side by side.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

from trainforge.rundir import read_manifest

MISSING = "(not set)"


def flatten(tree, prefix: str = "") -> dict[str, object]:
    """Nested settings as ``{"data.split.strategy": "holdout", "models[0].name": ...}``."""
    if isinstance(tree, dict):
        items: dict[str, object] = {}
        for key, value in tree.items():
            items.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return items or {prefix: {}}
    if isinstance(tree, list):
        items = {}
        for index, value in enumerate(tree):
            items.update(flatten(value, f"{prefix}[{index}]"))
        return items or {prefix: []}
    return {prefix: tree}


def spec_differences(a: Path, b: Path) -> pd.DataFrame:
    """Settings whose resolved values differ (paths to data compare by value, as written)."""
    left, right = (flatten(yaml.safe_load((p / "spec.yaml").read_text()) or {}) for p in (a, b))
    rows = [
        {"setting": key, "a": left.get(key, MISSING), "b": right.get(key, MISSING)}
        for key in sorted(set(left) | set(right))
        if left.get(key, MISSING) != right.get(key, MISSING)
    ]
    return pd.DataFrame(rows, columns=["setting", "a", "b"])


def record_differences(a: dict, b: dict) -> pd.DataFrame:
    """Data fingerprints, code commit, seed, task and versions: each with both values and
    whether they match."""
    rows = []
    for role in sorted(set(a.get("inputs") or {}) | set(b.get("inputs") or {})):
        rows.append((f"data: {role} sha256", _fingerprint(a, role), _fingerprint(b, role)))
    rows.append(("code commit", _code(a), _code(b)))
    for key in ("seed", "task", "primary_metric", "status"):
        rows.append((key, a.get(key, MISSING), b.get(key, MISSING)))
    versions_a, versions_b = a.get("versions") or {}, b.get("versions") or {}
    for name in sorted(set(versions_a) | set(versions_b)):
        rows.append(
            (f"version: {name}", versions_a.get(name, MISSING), versions_b.get(name, MISSING))
        )
    return pd.DataFrame(
        [
            {"what": w, "a": str(x), "b": str(y), "same": "yes" if x == y else "NO"}
            for w, x, y in rows
        ]
    )


def score_differences(a: Path, b: Path, metric: str | None) -> pd.DataFrame:
    """Each candidate's primary validation score in both runs, and b minus a."""
    boards = [_board(p) for p in (a, b)]
    if metric is None or not all(metric in board for board in boards if not board.empty):
        return pd.DataFrame()
    names = list(dict.fromkeys([*boards[0].get("candidate", []), *boards[1].get("candidate", [])]))
    rows = []
    for name in names:
        left, right = (_score(board, name, metric) for board in boards)
        change = right - left if math.isfinite(left) and math.isfinite(right) else math.nan
        rows.append({"candidate": name, f"{metric} a": left, f"{metric} b": right, "b - a": change})
    return pd.DataFrame(rows)


def compare_runs(a: Path, b: Path) -> dict[str, pd.DataFrame]:
    """The three comparisons, by title, for two run folders."""
    manifest_a, manifest_b = read_manifest(a), read_manifest(b)
    metric = manifest_a.get("primary_metric")
    if metric != manifest_b.get("primary_metric"):
        metric = None  # scores on different metrics are not comparable
    return {
        "spec": spec_differences(a, b),
        "records": record_differences(manifest_a, manifest_b),
        "scores": score_differences(a, b, metric),
    }


def _board(path: Path) -> pd.DataFrame:
    board = path / "leaderboard.csv"
    return pd.read_csv(board) if board.is_file() else pd.DataFrame()


def _score(board: pd.DataFrame, name: str, metric: str) -> float:
    if board.empty:
        return math.nan
    match = board.loc[board["candidate"] == name, metric]
    return float(match.iloc[0]) if len(match) else math.nan


def _fingerprint(manifest: dict, role: str) -> str:
    item = (manifest.get("inputs") or {}).get(role)
    return item.get("fingerprint", MISSING) if item else MISSING


def _code(manifest: dict) -> str:
    code = manifest.get("code")
    if not code:
        return "(not a git checkout)"
    return f"{code.get('commit')}{' (dirty)' if code.get('dirty') else ''}"
