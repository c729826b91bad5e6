"""Benchmark: trainforge with a time budget against FLAML at the same time limit.

Each tabular dataset of ../shared/data is split once into 80% train and 20% test (stratified for
classification, seed 0). Both tools get the train rows and the same time limit, then predict the
test rows, scored with the task's metric: ROC AUC (binary, higher is better), log loss
(multiclass, lower is better), RMSE (regression, lower is better). Neither sees the test rows
while it searches. trainforge runs ``trainforge.train(..., budget={"time": limit})`` with its
default candidates; FLAML runs ``AutoML().fit(time_budget=limit, metric=..., seed=0)`` with its
default estimators, in its own virtual environment (it is not a trainforge dependency):

    python3 -m venv benchmarks/.venv-flaml
    benchmarks/.venv-flaml/bin/pip install "flaml[automl]"

Every fit is a fresh child process; the wall time of the fit call (not the interpreter start)
is recorded with the score. Results are appended to benchmarks/out/quality_budget.jsonl, so a
long campaign can run in parts; ``--report`` turns them into the section in RESULTS.md.

Usage:
    .venv/bin/python benchmarks/quality_budget.py --limits 60 --datasets car,credit_g
    .venv/bin/python benchmarks/quality_budget.py --report --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular"
OUT = ROOT / "benchmarks" / "out"
LOG = OUT / "quality_budget.jsonl"
FLAML_PYTHON = ROOT / "benchmarks" / ".venv-flaml" / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Time-budgeted search: trainforge vs FLAML at equal time limits"
SEED = 0

sys.path.insert(0, str(Path(__file__).parent))
from quality import DATASETS  # noqa: E402 - the tabular datasets, shared with quality.py
from quality import METRIC as METRICS  # noqa: E402


def read(path: Path):
    import pandas as pd

    sep = "\t" if ".tsv" in path.name else ","
    return pd.read_csv(path, sep=sep, na_values=["?"])


def split(name: str) -> tuple[Path, Path]:
    """The dataset's train and test files under benchmarks/out (made once)."""
    from sklearn.model_selection import train_test_split

    folder = OUT / "quality_budget" / name
    train, test = folder / "train.csv", folder / "test.csv"
    if train.is_file() and test.is_file():
        return train, test
    file, target, task = DATASETS[name]
    frame = read(DATA / file)
    stratify = frame[target] if task != "regression" else None
    part_train, part_test = train_test_split(
        frame, test_size=0.2, random_state=SEED, stratify=stratify
    )
    folder.mkdir(parents=True, exist_ok=True)
    part_train.to_csv(train, index=False)
    part_test.to_csv(test, index=False)
    return train, test


def score(task: str, y_true, classes, proba=None, pred=None) -> float:
    import numpy as np
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

    if task == "binary":
        return float(roc_auc_score(np.asarray(y_true) == classes[1], proba[:, 1]))
    if task == "multiclass":
        return float(log_loss(y_true, proba, labels=list(classes)))
    return float(mean_squared_error(y_true, pred) ** 0.5)


# -- the two children ------------------------------------------------------------------------


def test_score(model, rows, target: str, task: str) -> float:
    """A trainforge model's score on the test rows."""
    import numpy as np

    X, y = rows.drop(columns=[target]), rows[target]
    if task == "regression":
        return score(task, y, None, pred=model.predict(X))
    frame = model.predict_proba(X)
    classes = [c[len("proba_") :] for c in frame.columns]
    labels = np.unique(y.astype(str))
    proba = frame.to_numpy()[:, [classes.index(str(c)) for c in labels]]
    return score(task, y.astype(str), list(labels), proba=proba)


def child_trainforge(name: str, limit: float) -> dict:
    import trainforge

    train, test = split(name)
    _, target, task = DATASETS[name]
    with tempfile.TemporaryDirectory() as runs:
        started = time.perf_counter()
        result = trainforge.train(
            data=train, target=target, task=task, budget={"time": limit}, output=runs, seed=SEED
        )
        seconds = time.perf_counter() - started
        manifest = json.loads((result.path / "manifest.json").read_text())
        rows = read(test)
        value = test_score(result.best, rows, target, task)
        # What picking the ensemble would have scored (after the clock: not part of `seconds`)
        ensemble = result.path / "candidates" / "ensemble" / "model"
        if result.best_name != "ensemble" and ensemble.is_dir():
            ensemble_value = test_score(trainforge.load(ensemble), rows, target, task)
        else:
            ensemble_value = value if result.best_name == "ensemble" else None
    return {
        "seconds": round(seconds, 1),
        "score": value,
        "best": result.best_name,
        "trials": manifest["budget"]["trials_run"],
        "overrun": manifest["budget"]["overrun_seconds"],
        "ensemble_score": ensemble_value,
    }


def child_flaml(name: str, limit: float) -> dict:
    import numpy as np
    from flaml import AutoML

    train, test = split(name)
    _, target, task = DATASETS[name]
    frame, rows = read(train), read(test)
    automl = AutoML()
    flaml_task = "regression" if task == "regression" else "classification"
    started = time.perf_counter()
    automl.fit(
        frame.drop(columns=[target]),
        frame[target],
        task=flaml_task,
        metric=METRICS[task] if task != "multiclass" else "log_loss",
        time_budget=limit,
        seed=SEED,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    X = rows.drop(columns=[target])
    if task == "regression":
        value = score(task, rows[target], None, pred=automl.predict(X))
    else:
        proba = automl.predict_proba(X)
        classes = list(automl.classes_)
        labels = np.unique(rows[target].astype(str))
        order = [[str(c) for c in classes].index(str(c)) for c in labels]
        value = score(task, rows[target].astype(str), list(labels), proba=proba[:, order])
    return {
        "seconds": round(seconds, 1),
        "score": value,
        "best": automl.best_estimator,
        "trials": None,
        "overrun": round(max(0.0, seconds - limit), 1),
    }


# -- the parent ------------------------------------------------------------------------------


def run_child(tool: str, name: str, limit: float) -> dict:
    python = sys.executable if tool == "trainforge" else str(FLAML_PYTHON)
    env = {**os.environ, "PYTHONPATH": str(ROOT)} if tool == "trainforge" else dict(os.environ)
    if tool == "flaml":
        env.pop("PYTHONPATH", None)
    command = [python, __file__, "--child", tool, name, str(limit)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def campaign(names: list[str], limits: list[float], tools: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for limit in limits:
        for name in names:
            split(name)
            for tool in tools:
                load = os.getloadavg()[0]
                outcome = run_child(tool, name, limit)
                record = {"dataset": name, "tool": tool, "limit": limit, "load": round(load, 1)}
                record.update(outcome)
                print(json.dumps(record), flush=True)
                with open(LOG, "a") as handle:
                    handle.write(json.dumps(record) + "\n")


def report() -> str:
    """The RESULTS.md section from the log (the newest record per dataset, tool and limit)."""
    from common import machine_line, versions

    latest: dict[tuple, dict] = {}
    for line in LOG.read_text().splitlines():
        record = json.loads(line)
        latest[(record["dataset"], record["limit"], record["tool"])] = record
    limits = sorted({key[1] for key in latest})
    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python benchmarks/quality_budget.py --limits "
        f"{','.join(str(int(x)) for x in limits)} --datasets ...` then `--report --write`; "
        'FLAML in `benchmarks/.venv-flaml` (`pip install "flaml[automl]"`).',
        "",
        machine_line(),
        f"- trainforge: {versions(['optuna', 'scikit-learn', 'torch'])}",
        "- Each dataset split once 80/20 (stratified, seed 0); scores on the 20% test rows. "
        "ROC AUC: higher is better; log loss and RMSE: lower is better. `s` is the fit call's "
        "wall time; `load` the 1-minute load average of the shared machine when the fit began. "
        "`its ensemble`: the test score of trainforge's ensemble candidate, whether or not the "
        "leaderboard picked it (blank where the record predates it).",
        "",
    ]
    wins = {}
    for limit in limits:
        lines += [
            f"### {int(limit)} s limit",
            "",
            "| dataset | metric | trainforge | s | best (trials) | its ensemble | FLAML | s | best "
            "| ahead | load |",
            "|---|---|---:|---:|---|---:|---:|---:|---|---|---:|",
        ]
        for name, (_, _, task) in DATASETS.items():
            ours = latest.get((name, limit, "trainforge"))
            theirs = latest.get((name, limit, "flaml"))
            if not ours or not theirs:
                continue
            metric = METRICS[task]
            if "error" in ours or "error" in theirs:
                lines.append(
                    f"| {name} | {metric} | {ours.get('error', '')} | | | | "
                    f"{theirs.get('error', '')} | | | | |"
                )
                continue
            higher = task == "binary"
            better = ours["score"] > theirs["score"] if higher else ours["score"] < theirs["score"]
            tie = abs(ours["score"] - theirs["score"]) < 1e-12
            ahead = "tie" if tie else ("trainforge" if better else "FLAML")
            wins.setdefault(limit, []).append(ahead)
            lines.append(
                f"| {name} | {metric} | {ours['score']:.4f} | {ours['seconds']:.0f} | "
                f"{ours['best']} ({ours['trials']}) | {_ensemble(ours)} | "
                f"{theirs['score']:.4f} | "
                f"{theirs['seconds']:.0f} | {theirs['best']} | {ahead} | "
                f"{max(ours['load'], theirs['load']):.1f} |"
            )
        lines.append("")
    lines.append("### Against the aim (trainforge ahead of FLAML on most datasets)")
    lines.append("")
    for limit, outcomes in wins.items():
        ahead = outcomes.count("trainforge")
        verdict = "met" if ahead > len(outcomes) / 2 else "**not met**"
        lines.append(
            f"- {int(limit)} s: trainforge ahead on {ahead} of {len(outcomes)} datasets run: "
            f"{verdict}"
        )
    return "\n".join(lines) + "\n"


def _ensemble(record: dict) -> str:
    """The ensemble's test score, blank where an older record did not keep it."""
    value = record.get("ensemble_score")
    if value is None and record["best"] == "ensemble":
        value = record["score"]
    return "" if value is None else f"{value:.4f}"


def write_section(text: str) -> None:
    from common import replace_section

    replace_section(RESULTS, SECTION, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "DATASET", "LIMIT"))
    parser.add_argument("--limits", default="60", help="seconds, comma-separated (60,300)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--tools", default="trainforge,flaml")
    parser.add_argument("--report", action="store_true", help="print the table from the log")
    parser.add_argument("--write", action="store_true", help="with --report: update RESULTS.md")
    args = parser.parse_args()
    if args.child:
        tool, name, limit = args.child
        child = child_trainforge if tool == "trainforge" else child_flaml
        print(json.dumps(child(name, float(limit))))
        return
    if args.report:
        text = report()
        print(text)
        if args.write:
            write_section(text)
        return
    names = [n for n in args.datasets.split(",") if n]
    limits = [float(x) for x in args.limits.split(",")]
    campaign(names, limits, args.tools.split(","))


if __name__ == "__main__":
    main()
