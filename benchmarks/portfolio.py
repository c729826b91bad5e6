"""Learn trainforge's zero-shot portfolio (trainforge/search/portfolio.json) from a meta-benchmark.

The method of TabRepo (Salinas and Erickson 2023): evaluate many configurations of every family
on many tables, then choose an ordered list by greedy forward selection, each step adding the
configuration that most improves the average normalised rank of the list's best member across
the tables. A budgeted run goes down that list before any sampled trial.

Tables: the nine in ../shared/data/tabular and the ``PORTFOLIO_SETS`` of the catalogue in
benchmarks/metabench (tables that installed packages ship; never its ``HELD_OUT`` part, never
the R packages modeldata and ISLR beyond shared/data's lending_club, never ArrowHead). Each table
is cut to at most ``--max-rows`` rows (seeded, stratified) and split once 75/25 (seed 0).

Configurations: each family's initial settings, plus ``CONFIGS[family]`` settings drawn from its
search space (``Family.space``, seeded): exactly what a budgeted run can try. Every fit runs
through trainforge's own preprocessing and estimators on one thread (as fits on small tables
do), boosting fits stop at ``--fit-seconds``. Scores: ROC AUC (binary), log loss (multiclass),
RMSE (regression) on the 25%. Fit times feed the size-based time prediction (a log-linear fit
of seconds on rows, columns and outputs per family), with a timing pass of each family's
initial settings on larger cuts of the largest tables, so the fit covers their sizes too.

Usage (each stage appends to benchmarks/out/portfolio/*.jsonl and can be resumed):

    .venv/bin/python benchmarks/portfolio.py evaluate          # hours on 2 cores
    .venv/bin/python benchmarks/portfolio.py timing
    .venv/bin/python benchmarks/portfolio.py select --write    # writes portfolio.json

The catalogue's tables are written as CSV by its own environment first:

    benchmarks/.venv-meta/bin/python -m benchmarks.metabench.datasets --markdown --write
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "tabular"
OUT = ROOT / "benchmarks" / "out" / "portfolio"
EVALS = OUT / "evals.jsonl"
TIMINGS = OUT / "timings.jsonl"
TARGET_FILE = ROOT / "trainforge" / "search" / "portfolio.json"
META_PYTHON = ROOT / "benchmarks" / ".venv-meta" / "bin" / "python"
SEED = 0

# Sampled configurations per family, on top of its initial settings. Cheap families get few:
# their spaces are small. Regression and classification draw the same settings.
CONFIGS = {
    "lightgbm": 24,
    "xgboost": 14,
    "catboost": 8,
    "hist_gradient_boosting": 12,
    "random_forest": 8,
    "extra_trees": 8,
    "logistic_regression": 3,
    "ridge": 0,
}
PORTFOLIO_SIZE = 30
TIMING_ROWS = (20_000, 40_000)
TIMING_SETS = ("adult", "bank_marketing", "shuttle", "diamonds", "movie_rating", "cps1988_wage")

sys.path.insert(0, str(ROOT / "benchmarks"))
from quality import DATASETS as SHARED_SETS  # noqa: E402


def tables() -> dict[str, dict]:
    """name -> {path, target, task} for every table the portfolio may learn from."""
    found = {
        name: {"path": str(SHARED / file), "target": target, "task": task}
        for name, (file, target, task) in SHARED_SETS.items()
    }
    script = (
        "import json; from benchmarks.metabench import datasets as d\n"
        "print(json.dumps({n: {'path': str(d.materialize(n)), 'target': d.CATALOGUE[n].target,"
        " 'task': d.CATALOGUE[n].task} for n in d.PORTFOLIO_SETS}))"
    )
    listed = subprocess.run(
        [str(META_PYTHON), "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    catalogue = json.loads(listed.stdout)
    held_out = subprocess.run(
        [
            str(META_PYTHON),
            "-c",
            "from benchmarks.metabench import datasets as d; print(' '.join(d.HELD_OUT))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not set(held_out) & set(catalogue), "a held-out table is in the portfolio's tables"
    found.update(catalogue)
    return found


def configurations(task: str) -> list[tuple[str, str, dict]]:
    """(config id, family, settings) for a task: initial settings, then seeded draws."""
    import optuna

    from trainforge.models.registry import get_family

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kind = "regression" if task == "regression" else "classification"
    chosen = []
    for name, count in CONFIGS.items():
        family = get_family(name)
        if not family.supports(task):
            continue
        chosen.append((f"{name}:default", name, {}))
        if family.space is None or count == 0:
            continue
        sampler = optuna.samplers.RandomSampler(seed=SEED + len(name))
        study = optuna.create_study(sampler=sampler)
        for index in range(count):
            trial = study.ask()
            settings = family.space.sample(trial, kind)
            study.tell(trial, 0.0)
            chosen.append((f"{name}:{index + 1}", name, _plain(settings)))
    return chosen


def _plain(settings: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def _dataset(info: dict, max_rows: int):
    """The table cut to ``max_rows`` rows and split 75/25, as trainforge reads it."""
    import numpy as np

    from trainforge.data.dataset import load_dataset
    from trainforge.data.read import read_table
    from trainforge.spec import DataSpec

    frame = read_table(info["path"])
    frame = frame[frame[info["target"]].notna()]
    if len(frame) > max_rows:
        from sklearn.model_selection import train_test_split

        stratify = frame[info["target"]] if info["task"] != "regression" else None
        frame, _ = train_test_split(
            frame, train_size=max_rows, random_state=SEED, stratify=stratify
        )
    spec = DataSpec(target=info["target"], split={"validation_fraction": 0.25})
    dataset = load_dataset(spec, info["task"], SEED, train=frame.reset_index(drop=True))
    return dataset, np


def _metric(task: str) -> str:
    return {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]


def _fit(name, family, settings, dataset, task, fit_seconds):
    from trainforge.candidate_run import profile_of
    from trainforge.candidates import Candidate, fit_candidate
    from trainforge.metrics import primary_metric
    from trainforge.models.registry import get_family

    family = get_family(family)
    profile = profile_of(dataset, SEED)
    primary = primary_metric(_metric(task), dataset.task)
    callbacks = None
    if family.space is not None and family.space.hooks is not None:
        at = time.monotonic() + fit_seconds
        callbacks = lambda part, workers=1: family.space.hooks(None, at)  # noqa: E731
    started = time.perf_counter()
    result = fit_candidate(
        Candidate(name, family, settings), dataset, profile, primary, callbacks=callbacks
    )
    seconds = time.perf_counter() - started
    return result.metrics.get(primary.name, math.nan), seconds, profile


def _done(path: Path, keys: tuple[str, ...]) -> set[tuple]:
    if not path.is_file():
        return set()
    return {tuple(json.loads(line)[k] for k in keys) for line in path.read_text().splitlines()}


def evaluate(args) -> None:
    """Score every configuration on every table (appends to evals.jsonl; resumable)."""
    OUT.mkdir(parents=True, exist_ok=True)
    done = _done(EVALS, ("dataset", "config"))
    names = sorted(tables().items())
    if args.datasets:
        names = [(n, i) for n, i in names if n in args.datasets.split(",")]
    for dataset_name, info in names:
        configs = [c for c in configurations(info["task"]) if (dataset_name, c[0]) not in done]
        if not configs:
            continue
        dataset, _ = _dataset(info, args.max_rows)
        print(f"{dataset_name}: {len(configs)} configurations", flush=True)
        for config, family, settings in configs:
            try:
                score, seconds, profile = _fit(
                    config, family, settings, dataset, info["task"], args.fit_seconds
                )
                error = None
            except Exception as exc:  # noqa: BLE001 - a failing config is a data point too
                score, seconds, profile, error = math.nan, math.nan, None, repr(exc)[:300]
            row = {
                "dataset": dataset_name,
                "task": info["task"],
                "config": config,
                "family": family,
                "settings": settings,
                "metric": _metric(info["task"]),
                "score": None if math.isnan(score) else score,
                "seconds": None if math.isnan(seconds) else round(seconds, 4),
                "rows": None if profile is None else profile.n_rows,
                "columns": None if profile is None else profile.n_columns,
                "classes": None if profile is None else profile.n_classes,
                "error": error,
            }
            with EVALS.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"  {config}: {row['score']} ({row['seconds']} s)", flush=True)


def timing(args) -> None:
    """Time each family's initial settings on larger cuts of the largest tables."""
    OUT.mkdir(parents=True, exist_ok=True)
    done = _done(TIMINGS, ("dataset", "rows_asked", "family"))
    found = tables()
    for dataset_name in TIMING_SETS:
        info = found[dataset_name]
        for rows in TIMING_ROWS:
            dataset, _ = _dataset(info, int(rows / 0.75))
            for family in CONFIGS:
                if (dataset_name, rows, family) in done:
                    continue
                from trainforge.models.registry import get_family

                if not get_family(family).supports(info["task"]):
                    continue
                score, seconds, profile = _fit(
                    family, family, {}, dataset, info["task"], args.fit_seconds
                )
                row = {
                    "dataset": dataset_name,
                    "rows_asked": rows,
                    "family": family,
                    "task": info["task"],
                    "seconds": round(seconds, 4),
                    "rows": profile.n_rows,
                    "columns": profile.n_columns,
                    "classes": profile.n_classes,
                }
                with TIMINGS.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(f"{dataset_name} {rows} {family}: {seconds:.1f} s", flush=True)


# -- selection ---------------------------------------------------------------------------------


def _ranks(evals: list[dict]) -> dict[str, dict[str, float]]:
    """dataset -> config -> normalised rank in [0, 1] (0: the best config on that table;
    failed configs rank last)."""
    by_dataset: dict[str, list[dict]] = {}
    for row in evals:
        by_dataset.setdefault(row["dataset"], []).append(row)
    ranks = {}
    for dataset, rows in by_dataset.items():
        higher = rows[0]["metric"] == "roc_auc"

        def key(row):
            if row["score"] is None:
                return math.inf
            return -row["score"] if higher else row["score"]

        ordered = sorted(rows, key=key)
        positions: dict[str, float] = {}
        for index, row in enumerate(ordered):  # ties share the mean of their positions
            same = [i for i, r in enumerate(ordered) if key(r) == key(row)]
            positions[row["config"]] = sum(same) / len(same)
        top = max(len(rows) - 1, 1)
        ranks[dataset] = {config: position / top for config, position in positions.items()}
    return ranks


def greedy(ranks: dict[str, dict[str, float]], size: int, cost: dict[str, float]) -> list[str]:
    """Forward selection: each step adds the configuration that most lowers the mean over
    tables of the best (lowest) normalised rank in the portfolio; ties go to the cheaper."""
    configs = sorted({c for per in ranks.values() for c in per})
    chosen: list[str] = []
    best = {dataset: 1.0 for dataset in ranks}
    for _ in range(min(size, len(configs))):

        def mean_after(config: str) -> float:
            return sum(min(best[d], ranks[d].get(config, 1.0)) for d in ranks) / len(ranks)

        options = [c for c in configs if c not in chosen]
        pick = min(options, key=lambda c: (round(mean_after(c), 9), cost.get(c, math.inf)))
        if chosen and mean_after(pick) >= sum(best.values()) / len(best) - 1e-12:
            break  # nothing left improves any table
        chosen.append(pick)
        best = {d: min(best[d], ranks[d].get(pick, 1.0)) for d in ranks}
        print(f"  {len(chosen):2d}. {pick:32s} mean best rank {sum(best.values()) / len(best):.4f}")
    return chosen


def _costs(evals: list[dict], timings: list[dict]) -> dict:
    """Per family: least squares of log seconds on log rows, log columns and log outputs."""
    import numpy as np

    fits = {}
    rows = [r for r in evals if r["seconds"]] + timings
    for family in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == family and r["seconds"] and r["rows"]]
        if len(mine) < 10:
            continue
        outputs = [max(r["classes"] or 0, 1) for r in mine]
        outputs = [1 if k == 2 else k for k in outputs]
        X = np.column_stack(
            [
                np.ones(len(mine)),
                np.log([r["rows"] for r in mine]),
                np.log([max(r["columns"], 1) for r in mine]),
                np.log(outputs),
            ]
        )
        y = np.log([max(r["seconds"], 1e-3) for r in mine])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        spread = float(np.std(y - X @ coef))
        fits[family] = {
            "intercept": round(float(coef[0]), 4),
            "log_rows": round(float(coef[1]), 4),
            "log_columns": round(float(coef[2]), 4),
            "log_outputs": round(float(coef[3]), 4),
            "residual_std": round(spread, 3),
            "fits": len(mine),
        }
    return fits


def select(args) -> None:
    evals = [json.loads(line) for line in EVALS.read_text().splitlines()]
    timings = (
        [json.loads(line) for line in TIMINGS.read_text().splitlines()] if TIMINGS.is_file() else []
    )
    portfolios, used = {}, {}
    for kind in ("classification", "regression"):
        mine = [r for r in evals if (r["task"] == "regression") == (kind == "regression")]
        # a config id names different settings per kind where a parameter exists for one kind
        # only (a forest's criterion), so settings are looked up among this kind's rows
        settings = {r["config"]: (r["family"], r["settings"]) for r in mine}
        ranks = _ranks(mine)
        cost: dict[str, float] = {}
        for row in mine:
            if row["seconds"]:
                cost.setdefault(row["config"], []).append(row["seconds"])  # type: ignore[arg-type]
        mean_cost = {c: sum(v) / len(v) for c, v in cost.items()}  # type: ignore[arg-type]
        print(f"{kind}: {len(ranks)} tables, {len({r['config'] for r in mine})} configurations")
        chosen = greedy(ranks, args.size, mean_cost)
        portfolios[kind] = [
            {"family": settings[c][0], "params": settings[c][1], "config": c} for c in chosen
        ]
        used[kind] = sorted(ranks)
    data = {
        "made_by": "benchmarks/portfolio.py (evaluate, timing, select)",
        "method": "greedy forward selection of the configuration that most lowers the mean "
        "normalised rank of the portfolio's best member (TabRepo, Salinas and Erickson 2023)",
        "protocol": f"each table cut to {args.max_rows} rows, split 75/25 (seed 0), one thread; "
        "scores: ROC AUC, log loss, RMSE on the 25%",
        "datasets": used,
        "portfolios": portfolios,
        "costs": _costs(evals, timings),
    }
    text = json.dumps(data, indent=1) + "\n"
    if args.write:
        TARGET_FILE.write_text(text)
        print(f"wrote {TARGET_FILE}")
    else:
        print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["evaluate", "timing", "select"])
    parser.add_argument("--max-rows", type=int, default=5000)
    parser.add_argument("--fit-seconds", type=float, default=30.0)
    parser.add_argument("--datasets", help="comma-separated table names (default: all)")
    parser.add_argument("--size", type=int, default=PORTFOLIO_SIZE)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    random.seed(SEED)
    {"evaluate": evaluate, "timing": timing, "select": select}[args.stage](args)


if __name__ == "__main__":
    main()
