"""Benchmark: trainforge training one random forest on adult vs a plain scikit-learn script.

Both sides do the same work: read adult.csv ("?" is missing), a stratified 80/20 holdout split
with seed 0, trainforge's tree preprocessing (median imputation with missing indicators for
numbers, constant imputation + ordinal codes for categories), RandomForestClassifier with
trainforge's settings for adult, predict on the validation rows, ROC AUC, and saving the fitted
pipeline. They must report the same AUC (to 1e-9), which shows the work is the same.

Every run is a fresh child process (this script with ``--child``), the two sides alternating,
timed end to end from the parent. The trainforge child also times its phases by wrapping a few
trainforge functions from outside (a dozen ``perf_counter`` calls; nothing in trainforge changes).

Usage:
    .venv/bin/python benchmarks/rf_adult.py --repeats 5 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import machine_line, versions

LAUNCHED = time.time()  # a child's first moment in Python code, to time interpreter start

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular" / "adult.csv"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
TARGET = "income >50K"
SEED = 0
# trainforge's random_forest settings for adult (26,048 training rows), from
# trainforge/models/classical.py::_forest; the parent checks the run used exactly these.
FOREST = {"n_estimators": 200, "min_samples_leaf": 5, "n_jobs": -1}
SECTION = "## Random forest on adult: trainforge vs plain scikit-learn"
SIDES = ("plain", "trainforge")
# Phases the trainforge child times: (module, function) -> label.
WRAPPED = {
    ("trainforge.api", "build_spec"): "spec + parameter check",
    ("trainforge.rundir", "git_state"): "git state",
    ("trainforge.rundir", "versions"): "package versions",
    ("trainforge.data.dataset", "read_table"): "read CSV",
    ("trainforge.data.dataset", "file_sha256"): "input sha256",
    ("trainforge.data.dataset", "infer_schema"): "schema inference",
    ("trainforge.data.dataset", "feature_frame"): "feature typing",
    ("trainforge.data.dataset", "holdout"): "split",
    ("trainforge.run", "fit_candidate"): "fit + predict + scores",
    ("trainforge.run", "save_bundle"): "save bundle",
    ("trainforge.bundle", "file_sha256"): "bundle sha256",
    ("trainforge.bundle", "fsync_tree"): "bundle fsync",
}


# -- the two sides, each run in a fresh child process --------------------------------------


def run_plain(data: Path, out: Path) -> dict:
    """The script a careful person writes by hand. Returns the AUC and phase seconds."""
    clock, phases = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        phases[name], clock = time.perf_counter() - clock, time.perf_counter()

    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    lap("imports")
    frame = pd.read_csv(data, na_values="?")
    y = frame.pop(TARGET).to_numpy()
    lap("read CSV")
    rows = np.arange(len(y))
    train, valid = train_test_split(rows, test_size=0.2, stratify=y, random_state=SEED)
    train, valid = np.sort(train), np.sort(valid)  # trainforge keeps rows in file order
    lap("split")
    model = plain_pipeline(frame, RandomForestClassifier(**FOREST, random_state=SEED))
    model.fit(frame.iloc[train], y[train])
    lap("fit")
    proba = model.predict_proba(frame.iloc[valid])[:, 1]
    lap("predict")
    auc = float(roc_auc_score(y[valid], proba))
    lap("scores")
    joblib.dump(model, out / "model.joblib")
    lap("save model")
    return {"auc": auc, "phases": phases}


def plain_pipeline(frame, forest):
    """The ColumnTransformer trainforge builds for trees, then the forest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = frame.select_dtypes("number").columns.tolist()
    categorical = [c for c in frame.columns if c not in numeric]
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    fill = SimpleImputer(strategy="constant", fill_value="(missing)")
    features = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median", add_indicator=True), numeric),
            ("categories", make_pipeline(fill, codes), categorical),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("features", features), ("model", forest)])


def run_trainforge(data: Path, out: Path) -> dict:
    """``trainforge.train`` as documented. Returns phase seconds (the AUC is in the run)."""
    started = time.perf_counter()
    import trainforge
    import trainforge.api  # train() imports it anyway; imported here to wrap phases

    imported = time.perf_counter()
    phases = wrap_phases()
    trainforge.train(data=data, target=TARGET, models=["random_forest"], output=out, seed=SEED)
    phases["imports"] = imported - started
    phases["train() call"] = time.perf_counter() - imported
    return {"phases": phases}


def wrap_phases() -> dict[str, float]:
    """Wrap the functions in WRAPPED so each call adds its seconds to the returned dict.

    ``save_bundle`` starts with ``import skops.io``; the wrapper does that import first, timed on
    its own, so the import and ``skops.io.dump`` show apart.
    """
    import importlib

    import trainforge.run

    phases: dict[str, float] = {}
    save = trainforge.run.save_bundle

    def save_bundle(*args, **kwargs):
        started, had_torch = time.perf_counter(), "torch" in sys.modules
        import skops.io

        phases["import skops.io"] = time.perf_counter() - started
        phases["torch imported by skops.io"] = float("torch" in sys.modules and not had_torch)
        skops.io.dump = timed(skops.io.dump, "skops.io.dump", phases)
        return save(*args, **kwargs)

    trainforge.run.save_bundle = save_bundle
    for (module_name, name), label in WRAPPED.items():
        module = importlib.import_module(module_name)
        setattr(module, name, timed(getattr(module, name), label, phases))
    return phases


def timed(function, label: str, phases: dict[str, float]):
    """``function``, adding the seconds of each call to ``phases[label]``."""

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - started

    return wrapper


def child(side: str, data: Path, out: Path) -> None:
    """Run one side and print its result, with when it started and finished, as JSON."""
    result = run_plain(data, out) if side == "plain" else run_trainforge(data, out)
    print(json.dumps({**result, "started": LAUNCHED, "finished": time.time()}), flush=True)


# -- the parent: timing, checking and reporting ----------------------------------------------


def time_side(side: str, data: Path) -> dict:
    """One end-to-end run of ``side`` in a fresh process; its wall seconds, AUC and phases."""
    out = Path(tempfile.mkdtemp(prefix=f"rf_adult_{side}_"))
    command = [sys.executable, __file__, "--child", side, "--data", str(data), "--out", str(out)]
    try:
        started, launched = time.perf_counter(), time.time()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        wall, ended = time.perf_counter() - started, time.time()
        if done.returncode != 0:
            raise SystemExit(f"{side} run failed:\n{done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["phases"]["interpreter start"] = result["started"] - launched
        result["phases"]["interpreter exit"] = ended - result["finished"]
        if side == "trainforge":
            result.update(read_run(out))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {**result, "side": side, "wall": wall}


def read_run(out: Path) -> dict:
    """AUC and the phases trainforge records itself, from its run folder."""
    (run,) = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    manifest = json.loads((run / "manifest.json").read_text())
    record = json.loads((run / "candidates" / "random_forest" / "metrics.json").read_text())
    if record["settings"] != FOREST:
        raise SystemExit(f"trainforge used {record['settings']}, this benchmark assumes {FOREST}")
    rows = manifest["data"]["validation"]["rows"]
    recorded = {
        "manifest seconds": manifest["seconds"],
        "fit": record["fit_seconds"],
        "predict": record["predict_ms_per_1k"] * rows / 1e6,  # predict + predict_proba
    }
    return {"auc": record["metrics"]["roc_auc"], "recorded": recorded}


def benchmark(data: Path, repeats: int, warmup: int) -> dict[str, list[dict]]:
    """Alternate the sides (ABBA order), after ``warmup`` untimed runs of each."""
    for _ in range(warmup):
        for side in SIDES:
            time_side(side, data)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for index in range(repeats):
        for side in SIDES if index % 2 == 0 else SIDES[::-1]:
            result = time_side(side, data)
            runs[side].append(result)
            print(f"  repeat {index + 1}: {side:<10} {result['wall']:6.2f} s", file=sys.stderr)
    return runs


def check_auc(runs: dict[str, list[dict]]) -> float:
    """The AUC every run reported; exits if any two differ by more than 1e-9."""
    aucs = [run["auc"] for side in SIDES for run in runs[side]]
    if max(aucs) - min(aucs) > 1e-9:
        raise SystemExit(f"the sides disagree on validation ROC AUC: {sorted(set(aucs))}")
    return aucs[0]


def timing_table(runs: dict[str, list[dict]]) -> str:
    """Markdown: median and min wall seconds of each side, and trainforge / plain."""
    walls = {side: [run["wall"] for run in runs[side]] for side in SIDES}
    med = {side: statistics.median(walls[side]) for side in SIDES}
    low = {side: min(walls[side]) for side in SIDES}
    lines = ["| side | runs | median s | min s |", "|---|---:|---:|---:|"]
    for side, label in zip(SIDES, ("plain scikit-learn", "trainforge")):
        lines.append(f"| {label} | {len(walls[side])} | {med[side]:.2f} | {low[side]:.2f} |")
    ratio, low_ratio = med["trainforge"] / med["plain"], low["trainforge"] / low["plain"]
    lines.append(f"| **ratio trainforge / plain** | | **{ratio:.2f}** | {low_ratio:.2f} |")
    return "\n".join(lines)


def plain_phases(run: dict) -> dict[str, float]:
    """One plain run's phases under the table's labels."""
    p = run["phases"]
    out = {
        "interpreter start": p["interpreter start"],
        "imports (plain: pandas + scikit-learn; trainforge: trainforge.api)": p["imports"],
        "read CSV": p["read CSV"],
        "split": p["split"],
        "fit (preprocessing + forest)": p["fit"],
        "predict on validation rows": p["predict"],
        "scores": p["scores"],
        "save model": p["save model"],
        "interpreter exit": p["interpreter exit"],
    }
    out["rest (subprocess, argument parsing)"] = run["wall"] - sum(out.values())
    return out


def trainforge_phases(run: dict) -> dict[str, float]:
    """One trainforge run's phases under the table's labels (see WRAPPED and wrap_phases)."""
    p, fit, predict = run["phases"], run["recorded"]["fit"], run["recorded"]["predict"]
    out = {
        "interpreter start": p["interpreter start"],
        "imports (plain: pandas + scikit-learn; trainforge: trainforge.api)": p["imports"],
        "spec + parameter check (imports sklearn.ensemble)": p["spec + parameter check"],
        "run folder: git state + package versions": p["git state"] + p["package versions"],
        "read CSV": p["read CSV"],
        "input sha256": p["input sha256"],
        "schema inference": p["schema inference"],
        "feature typing": p["feature typing"],
        "split": p["split"],
        "fit (preprocessing + forest)": fit,
        "predict on validation rows": predict,
        "scores": p["fit + predict + scores"] - fit - predict,
        "save model": p["save bundle"],  # includes the import of skops.io
        "save: import skops.io": p["import skops.io"],
        "save: skops.io.dump": p["skops.io.dump"],
        "save: sha256 + fsync + bundle.json": (
            p["save bundle"] - p["import skops.io"] - p["skops.io.dump"]
        ),
    }
    inside = sum(v for k, v in out.items() if not k.startswith("save:"))
    inside -= p["interpreter start"] + p["imports"]
    out["rest of train() (spec.yaml, manifest, leaderboard)"] = p["train() call"] - inside
    out["interpreter exit"] = p["interpreter exit"]
    counted = sum(v for k, v in out.items() if not k.startswith("save:"))
    out["rest (subprocess, argument parsing)"] = run["wall"] - counted
    return out


def phase_table(runs: dict[str, list[dict]]) -> str:
    """Markdown: median seconds per phase on each side, and what trainforge adds."""
    rows = {"plain": list(map(plain_phases, runs["plain"]))}
    rows["trainforge"] = list(map(trainforge_phases, runs["trainforge"]))
    med = {
        side: {k: statistics.median(r[k] for r in table) for k in table[0]}
        for side, table in rows.items()
    }
    walls = {side: statistics.median(r["wall"] for r in runs[side]) for side in SIDES}
    lines = [
        "| phase (median s) | plain | trainforge | trainforge − plain |",
        "|---|---:|---:|---:|",
    ]
    for name, tf in med["trainforge"].items():
        plain = med["plain"].get(name)
        shown = "—" if plain is None else f"{plain:.3f}"
        diff = "" if name.startswith("save:") else f"{tf - (plain or 0.0):+.3f}"
        name = name.replace("save: ", "&nbsp;&nbsp;of which ")
        lines.append(f"| {name} | {shown} | {tf:.3f} | {diff} |")
    total = walls["trainforge"] - walls["plain"]
    lines.append(
        f"| median wall | {walls['plain']:.3f} | {walls['trainforge']:.3f} | {total:+.3f} |"
    )
    return "\n".join(lines)


def machine() -> list[str]:
    """Lines describing this machine and the library versions."""
    names = ["trainforge", "scikit-learn", "numpy", "pandas", "scipy", "joblib", "skops", "torch"]
    return [machine_line(), f"- Python {platform.python_version()}; {versions(names)}"]


REPORT = """{section}

- Command: `{command}`
- Date: {date}
{machine}
- Validation ROC AUC, identical on both sides (checked to 1e-9): {auc:.6f}

Wall time of whole runs, each a fresh process, sides alternating:

{timing}

Where the time goes. trainforge's phases are timed by wrapping its functions from the
benchmark's child process; fit and predict come from the run's metrics.json (one
`predict_proba` pass, labels from its argmax); interpreter start and exit are the gaps
between the parent's clock and the child's first and last Python line. Here
`import skops.io` {torch}.

{phases}

Cross-check: trainforge's own manifest `seconds` (the run, without the spec check, imports,
interpreter start and exit) has median {recorded:.3f} s.
"""


def report(runs: dict[str, list[dict]], auc: float, command: str) -> str:
    """The markdown section for RESULTS.md (also printed)."""
    torch = [run["phases"]["torch imported by skops.io"] for run in runs["trainforge"]]
    torch = "imports torch" if all(torch) else "does not import torch" if not any(torch) else "?"
    return REPORT.format(
        section=heading(),
        command=command,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine="\n".join(machine()),
        auc=auc,
        timing=timing_table(runs),
        torch=torch,
        phases=phase_table(runs),
        recorded=statistics.median(r["recorded"]["manifest seconds"] for r in runs["trainforge"]),
    )


def heading() -> str:
    """This environment's section title: with torch installed, or the classical install."""
    from importlib.util import find_spec

    setup = "torch installed" if find_spec("torch") else "classical install, no torch"
    return f"{SECTION} ({setup})"


def write_section(section: str, path: Path = RESULTS) -> None:
    """Replace this environment's section of RESULTS.md (or append it)."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    title = heading()
    start = text.find(title + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(title))
        rest = "" if end < 0 else "\n" + text[end + 1 :]
        text = text[:start] + section + rest
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (>= 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per side first")
    parser.add_argument("--data", type=Path, default=DATA, help="path to adult.csv")
    parser.add_argument("--write", action="store_true", help=f"write the section to {RESULTS}")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.data, args.out)
    python = os.path.relpath(sys.executable) if sys.executable.startswith(str(ROOT)) else "python"
    command = shlex.join([python, os.path.relpath(__file__), *sys.argv[1:]])
    runs = benchmark(args.data.resolve(), args.repeats, args.warmup)
    section = report(runs, check_auc(runs), command)
    print(section)
    if args.write:
        write_section(section)
        print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
