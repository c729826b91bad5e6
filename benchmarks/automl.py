"""Benchmark: trainforge against AutoGluon (two presets) and FLAML at equal time limits.

Every table is split once 75/25 (stratified for classification, ``random_state=0``); the files
``benchmarks/out/automl/<dataset>/{train,test}.csv`` are written once and reused. Every tool
trains on train.csv only, with the same time limit (60 s and 300 s by default), then predicts
test.csv. This script scores every tool the same way, from the prediction file the tool left
(one ``proba_<class>`` column per class, or a ``prediction`` column for regression): ROC AUC for
binary tasks (higher is better), log loss for multiclass (lower is better), RMSE for regression
(lower is better). Class columns are matched to the test labels by value, so labels may be ints
or strings (``proba_1`` and a label read back as ``1`` or ``1.0`` are the same class).

The tools, each in a fresh process and in its own virtual environment:

- ``trainforge``: the CLI, exactly as a user runs it, from the project venv:
  ``.venv/bin/trainforge train train.csv --target T --task TASK --time-limit 60s --out DIR
  --seed 0``, then ``.venv/bin/trainforge predict RUN test.csv -o pred.csv``. The wall time is
  that of the whole ``train`` process; the best candidate, budget used and trials run come from
  ``RUN/manifest.json``.
- ``ag_default`` / ``ag_best``: ``TabularPredictor(label=T, eval_metric=M, problem_type=TASK,
  path=DIR).fit(train, time_limit=L, presets=P)`` with P ``"medium_quality"`` (AutoGluon's
  default) or ``"best_quality"``, then ``predict_proba`` / ``predict``; M is ``roc_auc``,
  ``log_loss`` or ``root_mean_squared_error``.
- ``flaml``: ``AutoML().fit(X, y, task=..., time_budget=L, metric=..., seed=0)`` with metric
  ``roc_auc``, ``log_loss`` or ``rmse`` and FLAML's default estimators.

Every tool is told the task (the table's known task), so none of them can infer it wrongly.
No thread or CPU settings are passed: each tool uses the machine as it does by default.

Tables: the nine of ``../shared/data/tabular`` (``DATASETS`` in quality.py) and, when the
catalogue ``benchmarks/metabench/datasets.py`` and its venv ``benchmarks/.venv-meta`` exist,
its ``HELD_OUT`` tables. The catalogue runs only in ``benchmarks/.venv-meta/bin/python`` (in a
subprocess: it needs packages the other venvs lack); without it only the nine shared tables run.
``--datasets`` takes a comma-separated list of names from both sources, plus ``shared`` (the
nine), ``held_out`` (the catalogue's HELD_OUT) and ``all`` (the default: both). A catalogue name
that is also a shared name is reached as ``meta:NAME``.

Environments (from the repository root; each is git-ignored by ``benchmarks/.venv*/``):

    # trainforge: the project venv (README.md)
    python3 -m venv .venv && .venv/bin/pip install -e .

    # FLAML 2.7: "flaml[automl]" brings lightgbm and xgboost; FLAML adds its catboost learner
    # to the default estimators only when catboost is importable, so install it too.
    python3 -m venv benchmarks/.venv-flaml
    benchmarks/.venv-flaml/bin/pip install "flaml[automl]==2.7.*" catboost pandas scikit-learn

    # AutoGluon 1.6: torch FIRST, pinned to the CPU build that lies on this machine's disk
    # (autogluon.tabular 1.6.3 asks for torch>=2.10,<2.14, which 2.13.0 meets, so pip adds no
    # CUDA torch). The extras cover every model type of both presets: GBM (lightgbm), CAT
    # (catboost), XGB (xgboost-cpu), FASTAI (fastai) and NN_TORCH (torch); RF and XT are
    # scikit-learn's. No "all"/"ray" extra: those pull Ray (see below).
    python3 -m venv benchmarks/.venv-autogluon
    benchmarks/.venv-autogluon/bin/pip install --upgrade pip      # (pip 26.3 when made)
    benchmarks/.venv-autogluon/bin/pip install "torch==2.13.0"
    benchmarks/.venv-autogluon/bin/pip install "torch==2.13.0" \\
        "autogluon.tabular[lightgbm,catboost,xgboost,fastai]==1.6.3"
    # fastai pulls PyPI's torchvision 0.28.0, which fails to import beside the CPU torch file
    # ("operator torchvision::nms does not exist"). Tabular fastai does not need it; remove it
    # so nothing trips over a half-working import:
    benchmarks/.venv-autogluon/bin/pip uninstall -y torchvision
    benchmarks/.venv-autogluon/bin/python -c "import ray"     # must fail: ModuleNotFoundError

Network: Ray (which AutoGluon uses for parallel fold fitting and for DyStack's "memory safe"
sub-fits) binds to the machine's network interfaces, so it is kept out of the AutoGluon venv
(no "ray"/"all" extras), the AutoGluon child refuses to run if ``ray`` is importable, and the
fit is told to stay sequential and in-process whatever is installed:
``ag_args_ensemble={"fold_fitting_strategy": "sequential_local"}`` (bagged folds one after
another in this process) and ``ds_args={"memory_safe_fits": False}`` (best_quality's dynamic
stacking sub-fit in this process instead of a Ray worker). AutoGluon's ``fit_strategy`` stays
at its default, ``"sequential"``. FLAML and trainforge open no listening sockets (trainforge's
MLflow tracking is a SQLite file in the run folder).

Every fit runs in a fresh child process (its output goes to
``benchmarks/out/automl/<dataset>/logs/``, its prediction file to ``.../pred/``); the 1-minute
load average is recorded when it starts. For each limit and table all chosen tools run one
after another (their order rotates from table to table), so machine noise falls on all of them.
Results are appended as JSON lines to ``benchmarks/out/automl.jsonl`` (``--out`` for another
file); a (dataset, limit, tool) already there is skipped unless ``--redo`` (or, for records that
hold an error, ``--retry-errors``), so a long campaign can run in parts. A record with a
``recovered`` field was copied from an earlier RESULTS.md table, not measured on this machine
(its origin and machine are in RESULTS.md's campaign notes); the report marks its score †.
With results at 60 s and 300 s, the report also compares trainforge's two: the difference of
test scores with a 95% interval from a paired bootstrap of the test rows, from the prediction
files kept in ``benchmarks/out/automl/<dataset>/pred`` (a table whose file a later run replaced
is left out). The same bootstrap compares trainforge with the better AutoGluon preset at each
limit, where both files are kept. That interval is the test split's noise only: a rerun of the
same code varies too.

Usage:
    .venv/bin/python benchmarks/automl.py                                # everything, 60 and 300 s
    .venv/bin/python benchmarks/automl.py --datasets credit_g,car --limits 60
    .venv/bin/python benchmarks/automl.py --tools trainforge,flaml --dry-run
    .venv/bin/python benchmarks/automl.py --report                      # print the tables
    .venv/bin/python benchmarks/automl.py --report --write              # and update RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DATA = ROOT.parent / "shared" / "data" / "tabular"
SPLITS = BENCH / "out" / "automl"
LOG = BENCH / "out" / "automl.jsonl"
RESULTS = BENCH / "RESULTS.md"
SECTION = "## AutoML comparison: trainforge vs AutoGluon and FLAML"
SEED = 0
TEST_SIZE = 0.25
BOOTSTRAPS = 500  # resamples of the test rows for the report's 300 s against 60 s

TRAINFORGE = ROOT / ".venv" / "bin" / "trainforge"
# One MLflow store for the whole campaign, as a user's project keeps one in its runs folder:
# only the first run pays for creating it (its database migrations take seconds).
TRACKING_URI = f"sqlite:///{BENCH / 'out' / 'automl' / 'mlflow' / 'mlflow.db'}"
PYTHONS = {
    "trainforge": ROOT / ".venv" / "bin" / "python",
    "autogluon": BENCH / ".venv-autogluon" / "bin" / "python",
    "flaml": BENCH / ".venv-flaml" / "bin" / "python",
    "meta": BENCH / ".venv-meta" / "bin" / "python",
}
CATALOGUE_DIR = BENCH  # holds metabench/datasets.py

# tool -> (venv, AutoGluon preset)
TOOLS = {
    "trainforge": ("trainforge", None),
    "ag_default": ("autogluon", "medium_quality"),
    "ag_best": ("autogluon", "best_quality"),
    "flaml": ("flaml", None),
}
LABELS = {
    "trainforge": "trainforge",
    "ag_default": "AG default",
    "ag_best": "AG best_quality",
    "flaml": "FLAML",
}
AG_PRESETS = ("ag_default", "ag_best")
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
AG_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "root_mean_squared_error"}
FLAML_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
HIGHER_IS_BETTER = {"binary": True, "multiclass": False, "regression": False}

# Packages whose versions the report names, per venv
PACKAGES = {
    "trainforge": [
        "trainforge",
        "scikit-learn",
        "lightgbm",
        "xgboost",
        "xgboost-cpu",
        "catboost",
        "optuna",
        "torch",
        "pandas",
        "numpy",
    ],
    "autogluon": [
        "autogluon.tabular",
        "torch",
        "lightgbm",
        "catboost",
        "xgboost-cpu",
        "fastai",
        "scikit-learn",
        "pandas",
        "numpy",
    ],
    "flaml": ["flaml", "lightgbm", "xgboost", "catboost", "scikit-learn", "pandas", "numpy"],
}


def hard_timeout(limit: float) -> float:
    """Seconds after which a child is killed (a tool far past its limit is recorded as such)."""
    return 2 * limit + 600


# -- datasets ----------------------------------------------------------------------------------


def shared_datasets() -> dict:
    """name -> (file, target, task) of the nine shared tables (quality.py's DATASETS)."""
    sys.path.insert(0, str(BENCH))
    from quality import DATASETS

    return dict(DATASETS)


_CATALOGUE_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from metabench import datasets as d
if sys.argv[2] == "list":
    entries = {}
    for name, entry in d.CATALOGUE.items():
        entries[str(name)] = {"target": str(entry.target), "task": str(entry.task)}
    print(json.dumps({"held_out": [str(n) for n in d.HELD_OUT], "entries": entries}))
else:
    frame = d.load(sys.argv[3])
    frame.to_csv(sys.argv[4], index=False)
    print(json.dumps({"rows": int(len(frame)), "columns": int(frame.shape[1])}))
"""


def catalogue_python() -> Path | None:
    python = PYTHONS["meta"]
    return python if python.is_file() else None


def catalogue() -> tuple[dict, list[str], str | None]:
    """The held-out catalogue as ({name: {target, task}}, HELD_OUT, why it is absent or None).

    Runs in benchmarks/.venv-meta (the catalogue needs packages the other venvs lack)."""
    module = CATALOGUE_DIR / "metabench" / "datasets.py"
    if not module.is_file():
        return {}, [], f"{_show(module)} not found"
    python = catalogue_python()
    if python is None:
        return {}, [], f"{_show(PYTHONS['meta'])} not found"
    done = subprocess.run(
        [str(python), "-c", _CATALOGUE_SCRIPT, str(CATALOGUE_DIR), "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_clean_env(),
    )
    if done.returncode != 0:
        return {}, [], "the catalogue failed to load: " + _tail(done.stderr, 1)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["entries"], found["held_out"], None


class Tables:
    """Resolves names to tables: the nine shared ones and the catalogue's."""

    def __init__(self):
        self.shared = shared_datasets()
        self._catalogue = None

    def catalogue(self):
        if self._catalogue is None:
            self._catalogue = catalogue()
        return self._catalogue

    def resolve(self, spec: str) -> list[str]:
        names: list[str] = []
        for word in [w.strip() for w in spec.split(",") if w.strip()]:
            if word in ("all", "shared"):
                names += list(self.shared)
            if word in ("all", "held_out", "heldout"):
                entries, held_out, why = self.catalogue()
                if why:
                    print(
                        f"note: held-out catalogue unavailable ({why}); "
                        "running the shared tables only",
                        file=sys.stderr,
                    )
                names += [n if n not in self.shared else f"meta:{n}" for n in held_out]
            if word in ("all", "shared", "held_out", "heldout"):
                continue
            if word in self.shared or self._split_meta(word):
                names.append(word)
                continue
            entries, _, why = self.catalogue()
            bare = word.removeprefix("meta:")
            if bare in entries:
                names.append(
                    word if word.startswith("meta:") or word not in self.shared else f"meta:{word}"
                )
                continue
            known = ", ".join(list(self.shared) + sorted(entries))
            extra = f" (catalogue unavailable: {why})" if why else ""
            raise SystemExit(f"unknown dataset {word!r}{extra}; known: {known}")
        return list(dict.fromkeys(names))  # in order, once each

    def _split_meta(self, name: str) -> dict | None:
        path = SPLITS / name / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def describe(self, name: str) -> dict:
        """target, task and source of a table (from its split if made, else from its source)."""
        made = self._split_meta(name)
        if made:
            return made
        if name in self.shared:
            _, target, task = self.shared[name]
            return {"target": target, "task": task, "source": "shared"}
        entries, _, why = self.catalogue()
        entry = entries.get(name.removeprefix("meta:"))
        if entry is None:
            raise SystemExit(f"unknown dataset {name!r} ({why or 'not in the catalogue'})")
        return {"target": entry["target"], "task": entry["task"], "source": "catalogue"}

    def split(self, name: str) -> dict:
        """Make the table's train/test files once; return its meta.json content."""
        made = self._split_meta(name)
        folder = SPLITS / name
        if made and (folder / "train.csv").is_file() and (folder / "test.csv").is_file():
            return made
        import pandas as pd
        from sklearn.model_selection import train_test_split

        info = self.describe(name)
        target, task = info["target"], info["task"]
        if info["source"] == "shared":
            file = self.shared[name][0]
            sep = "\t" if ".tsv" in file else ","
            frame = pd.read_csv(DATA / file, sep=sep, na_values=["?"], skipinitialspace=True)
            origin = str((DATA / file).relative_to(ROOT.parent))
        else:
            frame = self._load_catalogue(name.removeprefix("meta:"))
            origin = f"benchmarks/metabench/datasets.py load({name.removeprefix('meta:')!r})"
        if task not in METRIC:
            raise SystemExit(f"{name}: task {task!r} is none of {sorted(METRIC)}")
        if target not in frame.columns:
            raise SystemExit(f"{name}: target {target!r} not among its columns")
        dropped = int(frame[target].isna().sum())
        frame = frame[frame[target].notna()].reset_index(drop=True)
        stratify = None
        if task != "regression":
            counts = frame[target].value_counts()
            stratify = frame[target] if counts.min() >= 2 else None
        train, test = train_test_split(
            frame, test_size=TEST_SIZE, random_state=SEED, stratify=stratify
        )
        folder.mkdir(parents=True, exist_ok=True)
        train.to_csv(folder / "train.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        meta = {
            **info,
            "origin": origin,
            "rows_train": int(len(train)),
            "rows_test": int(len(test)),
            "columns": int(frame.shape[1]),
            "stratified": stratify is not None,
            "rows_without_target_dropped": dropped,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        return meta

    def _load_catalogue(self, name: str):
        import pandas as pd

        python = catalogue_python()
        if python is None:
            raise SystemExit(f"{name}: {_show(PYTHONS['meta'])} not found")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "full.csv"
            done = subprocess.run(
                [str(python), "-c", _CATALOGUE_SCRIPT, str(CATALOGUE_DIR), "load", name, str(path)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=_clean_env(),
            )
            if done.returncode != 0:
                raise SystemExit(f"catalogue load({name!r}) failed: {_tail(done.stderr, 3)}")
            return pd.read_csv(path)


# -- scoring (the same code for every tool) ---------------------------------------------------


def class_key(value) -> str:
    """A label as text that matches however it was written: 1, 1.0, "1" and "proba_1" agree."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number.is_integer():
        return str(int(number))
    return repr(number)


def _sorted_classes(keys) -> list[str]:
    keys = list(dict.fromkeys(keys))
    try:
        return sorted(keys, key=float)
    except ValueError:
        return sorted(keys)


def score_predictions(task: str, y_true, predictions) -> float:
    """The test score of a prediction file (a DataFrame) against the true labels or values."""
    import numpy as np
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

    if len(predictions) != len(y_true):
        raise ValueError(f"{len(predictions)} predictions for {len(y_true)} test rows")
    if task == "regression":
        if "prediction" not in predictions.columns:
            raise ValueError("no 'prediction' column in the prediction file")
        values = predictions["prediction"].to_numpy(dtype=float)
        return float(mean_squared_error(np.asarray(y_true, dtype=float), values) ** 0.5)
    columns = {
        class_key(c[len("proba_") :]): c for c in predictions.columns if str(c).startswith("proba_")
    }
    if not columns:
        raise ValueError("no proba_<class> columns in the prediction file")
    truth = [class_key(v) for v in y_true]
    classes = _sorted_classes(list(columns) + truth)
    proba = np.zeros((len(truth), len(classes)))
    for j, key in enumerate(classes):
        if key in columns:
            proba[:, j] = predictions[columns[key]].to_numpy(dtype=float)
    if task == "binary":
        if len(classes) != 2:
            raise ValueError(f"binary task with classes {classes}")
        positive = proba[:, 1] if classes[1] in columns else 1.0 - proba[:, 0]
        return float(roc_auc_score(np.asarray(truth) == classes[1], positive))
    totals = proba.sum(axis=1, keepdims=True)
    proba = np.where(totals > 0, proba / np.where(totals > 0, totals, 1), 1.0 / len(classes))
    return float(log_loss(truth, proba, labels=classes))


# -- the children: AutoGluon and FLAML, each in its own venv ----------------------------------


def child_autogluon(job: dict) -> dict:
    import importlib.util

    if importlib.util.find_spec("ray") is not None:  # network rule: Ray binds to interfaces
        raise SystemExit("ray is importable in this venv; uninstall it (see the docstring)")
    started = time.perf_counter()
    import pandas as pd
    from autogluon.tabular import TabularPredictor

    imported = time.perf_counter()
    target, task, limit = job["target"], job["task"], job["limit"]
    train = pd.read_csv(job["train"])
    predictor = TabularPredictor(
        label=target, eval_metric=AG_METRIC[task], problem_type=task, path=job["model_dir"]
    )
    fit_started = time.perf_counter()
    predictor.fit(
        train,
        time_limit=limit,
        presets=job["preset"],
        ag_args_ensemble={"fold_fitting_strategy": "sequential_local"},
        ds_args={"memory_safe_fits": False},
    )
    fit_seconds = time.perf_counter() - fit_started
    rows = pd.read_csv(job["test"]).drop(columns=[target])
    predict_started = time.perf_counter()
    if task == "regression":
        out = pd.DataFrame({"prediction": predictor.predict(rows).to_numpy()})
    else:
        proba = predictor.predict_proba(rows)
        out = pd.DataFrame({f"proba_{class_key(c)}": proba[c].to_numpy() for c in proba.columns})
    predict_seconds = time.perf_counter() - predict_started
    out.to_csv(job["pred"], index=False)
    board = predictor.leaderboard(extra_info=True, silent=True)
    types = set()
    for _, row in board.iterrows():
        child = row.get("child_model_type")
        kind = child if isinstance(child, str) and child else row.get("model_type")
        if isinstance(kind, str):
            types.add(kind)
    overfitting = getattr(predictor, "_stacked_overfitting_occurred", None)
    return {
        "fit_seconds": round(fit_seconds, 1),
        "import_seconds": round(imported - started, 1),
        "predict_seconds": round(predict_seconds, 2),
        "best": predictor.model_best,
        "models": int(len(board)),
        "model_types": sorted(types),
        # the deepest level of a model, the final weighted ensemble included (L2 without stacking)
        "max_stack_level": int(board["stack_level"].max()) if "stack_level" in board else None,
        # best_quality's DyStack verdict (None where it did not run)
        "stacked_overfitting": None if overfitting is None else bool(overfitting),
        "versions": _versions(PACKAGES["autogluon"]),
    }


def child_flaml(job: dict) -> dict:
    started = time.perf_counter()
    import pandas as pd
    from flaml import AutoML

    imported = time.perf_counter()
    target, task, limit = job["target"], job["task"], job["limit"]
    train = pd.read_csv(job["train"])
    automl = AutoML()
    fit_started = time.perf_counter()
    automl.fit(
        train.drop(columns=[target]),
        train[target],
        task="regression" if task == "regression" else "classification",
        time_budget=limit,
        metric=FLAML_METRIC[task],
        seed=SEED,
    )
    fit_seconds = time.perf_counter() - fit_started
    rows = pd.read_csv(job["test"]).drop(columns=[target])
    predict_started = time.perf_counter()
    if task == "regression":
        out = pd.DataFrame({"prediction": automl.predict(rows)})
    else:
        proba = automl.predict_proba(rows)
        out = pd.DataFrame(
            {f"proba_{class_key(c)}": proba[:, i] for i, c in enumerate(automl.classes_)}
        )
    predict_seconds = time.perf_counter() - predict_started
    out.to_csv(job["pred"], index=False)
    return {
        "fit_seconds": round(fit_seconds, 1),
        "import_seconds": round(imported - started, 1),
        "predict_seconds": round(predict_seconds, 2),
        "best": automl.best_estimator,
        "best_config": automl.best_config,
        "versions": _versions(PACKAGES["flaml"]),
    }


def _versions(names: list[str]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


# -- the parent -------------------------------------------------------------------------------


def _show(path: Path) -> str:
    """A path relative to the repository root where it lies inside it."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return str(path)


def _clean_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def _tail(text: str, lines: int) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) if kept else ""


def _run_logged(command: list[str], log: Path, cwd: Path, timeout: float) -> tuple[int, float]:
    """Run a command in its own process group, output appended to ``log``; (rc, seconds)."""
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=_clean_env(),
            start_new_session=True,
        )
        try:
            rc = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this call started
            process.wait()
            rc = -9
            handle.write(f"\n[killed after {timeout:.0f} s]\n")
        seconds = time.perf_counter() - started
    return rc, seconds


def _log_text(log: Path) -> str:
    return log.read_text(errors="replace") if log.is_file() else ""


def commands(tool: str, split_dir: Path, info: dict, limit: float, work: Path) -> list[list[str]]:
    """The command lines a tool's run consists of (also what --dry-run prints)."""
    target, task = info["target"], info["task"]
    train, test = split_dir / "train.csv", split_dir / "test.csv"
    if tool == "trainforge":
        runs = work / "runs"
        return [
            [
                str(TRAINFORGE),
                "train",
                str(train),
                "--target",
                target,
                "--task",
                task,
                "--time-limit",
                f"{limit:g}s",
                "--out",
                str(runs),
                "--seed",
                str(SEED),
                "--tracking-uri",
                TRACKING_URI,
            ],
            [str(TRAINFORGE), "predict", "<run>", str(test), "-o", str(work / "pred.csv")],
        ]
    python = PYTHONS[TOOLS[tool][0]]
    return [[str(python), str(Path(__file__).resolve()), "--child", str(work / "job.json")]]


def run_trainforge(split_dir: Path, info: dict, limit: float, work: Path, log: Path) -> dict:
    (BENCH / "out" / "automl" / "mlflow").mkdir(parents=True, exist_ok=True)
    train_cmd, predict_cmd = commands("trainforge", split_dir, info, limit, work)
    rc, seconds = _run_logged(train_cmd, log, work, hard_timeout(limit))
    record = {"seconds": round(seconds, 1), "process_seconds": round(seconds, 1)}
    text = _log_text(log)
    if rc != 0:
        record["error"] = f"train exit {rc}: " + _tail(text, 3)
        return record
    run = None
    for line in reversed(text.splitlines()):
        if line.startswith("run: "):
            run = Path(line[len("run: ") :].strip())
            break
    if run is None or not (run / "manifest.json").is_file():
        found = sorted((work / "runs").glob("*/manifest.json"))
        run = found[-1].parent if found else None
    if run is None:
        record["error"] = "train finished but no run folder was found"
        return record
    manifest = json.loads((run / "manifest.json").read_text())
    for name in ("manifest.json", "leaderboard.csv"):  # the run folder itself is temporary
        if (run / name).is_file():
            shutil.copy(run / name, log.with_name(f"{log.stem}-{name}"))
    best = manifest.get("best") or {}
    budget = manifest.get("budget") or {}
    record.update(
        best=best.get("candidate") if isinstance(best, dict) else best,
        trials=budget.get("trials_run"),
        budget_used=budget.get("used_seconds"),
        overrun=budget.get("overrun_seconds"),
        stopped_by=budget.get("stopped_by"),
        status=manifest.get("status"),
    )
    predict_cmd[2] = str(run)
    rc, predict_seconds = _run_logged(predict_cmd, log, work, 600)
    record["predict_process_seconds"] = round(predict_seconds, 1)
    if rc != 0:
        record["error"] = f"predict exit {rc}: " + _tail(_log_text(log), 3)
    return record


def run_child(tool: str, split_dir: Path, info: dict, limit: float, work: Path, log: Path):
    venv, preset = TOOLS[tool]
    python = PYTHONS[venv]
    if not python.is_file():
        return {"error": f"{_show(python)} not found (see the docstring)"}
    job = {
        "tool": tool,
        "preset": preset,
        "target": info["target"],
        "task": info["task"],
        "limit": limit,
        "train": str(split_dir / "train.csv"),
        "test": str(split_dir / "test.csv"),
        "pred": str(work / "pred.csv"),
        "model_dir": str(work / "model"),
        "result": str(work / "result.json"),
    }
    (work / "job.json").write_text(json.dumps(job))
    (command,) = commands(tool, split_dir, info, limit, work)
    rc, seconds = _run_logged(command, log, work, hard_timeout(limit))
    record = {"process_seconds": round(seconds, 1)}
    if rc != 0 or not (work / "result.json").is_file():
        record["error"] = f"exit {rc}: " + _tail(_log_text(log), 3)
        return record
    found = json.loads((work / "result.json").read_text())
    record["seconds"] = found.pop("fit_seconds")
    record.update(found)
    return record


def git_state() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    commit = done.stdout.strip() or "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "trainforge"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return commit + ("+dirty" if dirty else "")


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def campaign(args, tables: Tables, names: list[str], limits: list[float], tools: list[str]):
    done = {}
    for record in read_log(args.out):
        done[(record["dataset"], float(record["limit"]), record["tool"])] = record
    commit = git_state()
    for limit in limits:
        for index, name in enumerate(names):
            order = tools[index % len(tools) :] + tools[: index % len(tools)]
            todo = []
            for tool in order:
                previous = done.get((name, float(limit), tool))
                if previous and not args.redo and not (args.retry_errors and "error" in previous):
                    print(f"skip {name} {limit:g}s {tool} (in {args.out.name})", flush=True)
                    continue
                todo.append(tool)
            if not todo:
                continue
            if args.dry_run:
                info = tables.describe(name)
                split_dir = SPLITS / name
                for tool in todo:
                    work = Path("<tmp>")
                    for command in commands(tool, split_dir, info, limit, work):
                        print(f"[{name} {limit:g}s {tool}] " + " ".join(command))
                continue
            info = tables.split(name)
            split_dir = SPLITS / name
            y_true = _test_target(split_dir, info["target"])
            for tool in todo:
                record = run_one(tool, name, split_dir, info, limit, y_true, commit)
                print(json.dumps(record), flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with open(args.out, "a") as handle:
                    handle.write(json.dumps(record) + "\n")


def _test_target(split_dir: Path, target: str):
    import pandas as pd

    return pd.read_csv(split_dir / "test.csv", usecols=[target])[target].tolist()


def run_one(tool, name, split_dir, info, limit, y_true, commit) -> dict:
    import pandas as pd

    (split_dir / "logs").mkdir(exist_ok=True)
    (split_dir / "pred").mkdir(exist_ok=True)
    stem = f"{tool}-{limit:g}s"
    log = split_dir / "logs" / f"{stem}.log"
    log.write_text("")
    record = {
        "dataset": name,
        "source": info["source"],
        "task": info["task"],
        "metric": METRIC[info["task"]],
        "limit": float(limit),
        "tool": tool,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load": round(os.getloadavg()[0], 2),
    }
    if tool == "trainforge":
        record["trainforge_commit"] = commit
    with tempfile.TemporaryDirectory(prefix=f"automl-{stem}-") as folder:
        work = Path(folder)
        if tool == "trainforge":
            outcome = run_trainforge(split_dir, info, limit, work, log)
        else:
            outcome = run_child(tool, split_dir, info, limit, work, log)
        record.update(outcome)
        pred = work / "pred.csv"
        if "error" not in record and pred.is_file():
            predictions = pd.read_csv(pred)
            kept = [
                c for c in predictions.columns if c == "prediction" or str(c).startswith("proba_")
            ]
            predictions[kept].to_csv(split_dir / "pred" / f"{stem}.csv", index=False)
            try:
                record["score"] = score_predictions(info["task"], y_true, predictions[kept])
            except Exception as exc:  # a malformed prediction file is that tool's result
                record["error"] = f"scoring failed: {exc}"
        elif "error" not in record:
            record["error"] = "no prediction file"
    return record


# -- the report -------------------------------------------------------------------------------


def _fmt(value, digits=4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _seconds(record: dict) -> str:
    """Fit (process) seconds; trainforge's fit is its whole train process."""
    fit, process = record.get("seconds"), record.get("process_seconds")
    if record["tool"] == "trainforge" or process is None or fit is None:
        return f"{fit:.0f}" if fit is not None else ""
    return f"{fit:.0f} ({process:.0f})"


def _better(task: str, a: float, b: float) -> bool:
    return a > b if HIGHER_IS_BETTER[task] else a < b


def _paired(name: str, records: list[dict], files: list[Path]):
    """The test-score gain of the second record over the first (signed so that positive is
    better) and the 95% interval of a paired bootstrap of the test rows (BOOTSTRAPS resamples,
    seeded), from the kept prediction files; None when a record is missing, recovered, or its
    file no longer gives its logged score (a later run replaced it)."""
    import numpy as np
    import pandas as pd

    if not all(r and "score" in r and not r.get("recovered") for r in records):
        return None
    if not all(f.is_file() for f in files):
        return None
    task = records[0]["task"]
    y_true = np.asarray(_test_target(SPLITS / name, _target_of(name)), dtype=object)
    preds = [pd.read_csv(f) for f in files]
    if any(
        abs(score_predictions(task, y_true, p) - r["score"]) > 1e-9 for p, r in zip(preds, records)
    ):
        return None
    sign = 1.0 if HIGHER_IS_BETTER[task] else -1.0
    rng = np.random.default_rng(SEED)
    gains = []
    for _ in range(BOOTSTRAPS):
        rows = rng.integers(0, len(y_true), len(y_true))
        scores = [score_predictions(task, y_true[rows], p.iloc[rows]) for p in preds]
        gains.append(sign * (scores[1] - scores[0]))
    low, high = np.percentile(gains, [2.5, 97.5])
    return sign * (records[1]["score"] - records[0]["score"]), low, high


def _verdict(low: float, high: float) -> str:
    return "better" if low > 0 else "worse" if high < 0 else "noise"


def _pred_file(name: str, tool: str, limit: float) -> Path:
    return SPLITS / name / "pred" / f"{tool}-{limit:g}s.csv"


def more_time(latest: dict, datasets: list[str], short: float, long: float) -> list[str]:
    """The report's lines comparing trainforge at ``long`` seconds with ``short`` on each table
    (see ``_paired``)."""
    lines = [
        f"### More time: trainforge at {long:g} s against {short:g} s",
        "",
        f"Paired bootstrap of the test rows ({BOOTSTRAPS} resamples, seed {SEED}): the 95% "
        "interval of the difference (later minus earlier, signed so that positive is better). "
        "`noise`: the interval holds 0.",
        "",
        f"| dataset | metric | {short:g} s | {long:g} s | better by | 95% interval | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    tally = {"better": 0, "noise": 0, "worse": 0}
    for name in datasets:
        pair = [latest.get((name, limit, "trainforge")) for limit in (short, long)]
        files = [_pred_file(name, "trainforge", limit) for limit in (short, long)]
        paired = _paired(name, pair, files)
        if paired is None:
            continue
        gain, low, high = paired
        verdict = _verdict(low, high)
        tally[verdict] += 1
        lines.append(
            f"| {name} | {METRIC[pair[0]['task']]} | {_fmt(pair[0]['score'])} "
            f"| {_fmt(pair[1]['score'])} | {gain:+.3g} | {low:+.3g} to {high:+.3g} | {verdict} |"
        )
    lines += [
        "",
        f"- At least as good with more time (better, or within the noise): "
        f"{tally['better'] + tally['noise']} of {sum(tally.values())} tables "
        f"({tally['better']} better, {tally['noise']} noise, {tally['worse']} worse).",
        "",
    ]
    return lines


def against_autogluon(latest: dict, datasets: list[str], limits: list[float]) -> list[str]:
    """The report's lines on how far trainforge is from the better AutoGluon preset, where
    both prediction files are kept (recovered figures have none): the same paired bootstrap
    as ``more_time``, trainforge minus AutoGluon."""
    rows = []
    for limit in limits:
        for name in datasets:
            ours = latest.get((name, limit, "trainforge"))
            scored = [(t, latest.get((name, limit, t))) for t in AG_PRESETS]
            scored = [(t, r) for t, r in scored if r and "score" in r]
            if not ours or "score" not in ours or not scored:
                continue
            pick = max if HIGHER_IS_BETTER[ours["task"]] else min
            tool, theirs = pick(scored, key=lambda pair: pair[1]["score"])
            files = [_pred_file(name, tool, limit), _pred_file(name, "trainforge", limit)]
            paired = _paired(name, [theirs, ours], files)
            if paired is not None:
                rows.append((limit, name, ours, tool, theirs, *paired))
    if not rows:
        return []
    lines = [
        "### Against the better AutoGluon preset: how far apart",
        "",
        "Where both prediction files are kept (not for recovered † figures): the same paired "
        "bootstrap, trainforge minus AutoGluon (positive: trainforge better).",
        "",
        "| limit | dataset | metric | trainforge | AutoGluon | preset | better by | 95% interval "
        "| verdict |",
        "|---:|---|---|---:|---:|---|---:|---|---|",
    ]
    tally: dict[float, dict[str, int]] = {}
    for limit, name, ours, tool, theirs, gain, low, high in rows:
        verdict = _verdict(low, high)
        counts = tally.setdefault(limit, {"better": 0, "noise": 0, "worse": 0})
        counts[verdict] += 1
        lines.append(
            f"| {limit:g} s | {name} | {METRIC[ours['task']]} | {_fmt(ours['score'])} "
            f"| {_fmt(theirs['score'])} | {LABELS[tool]} | {gain:+.3g} "
            f"| {low:+.3g} to {high:+.3g} | {verdict} |"
        )
    lines.append("")
    for limit, counts in tally.items():
        lines.append(
            f"- {limit:g} s: {sum(counts.values())} tables with both files: trainforge better "
            f"beyond the noise on {counts['better']}, within it on {counts['noise']}, worse "
            f"beyond it on {counts['worse']}."
        )
    return [*lines, ""]


def _target_of(name: str) -> str:
    return json.loads((SPLITS / name / "meta.json").read_text())["target"]


def report(path: Path, venv_versions: dict | None = None) -> str:
    latest: dict[tuple, dict] = {}
    for record in read_log(path):
        latest[(record["dataset"], float(record["limit"]), record["tool"])] = record
    if not latest:
        return f"{SECTION}\n\nNo results in {path}.\n"
    shared = list(shared_datasets())
    datasets = sorted(
        {k[0] for k in latest}, key=lambda n: (shared.index(n) if n in shared else len(shared), n)
    )
    limits = sorted({k[1] for k in latest})
    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python benchmarks/automl.py --limits "
        f"{','.join(f'{x:g}' for x in limits)}` (in parts with `--datasets`), then "
        "`--report --write`. Environments: see the docstring of benchmarks/automl.py.",
        "",
    ]
    try:
        sys.path.insert(0, str(BENCH))
        from common import machine_line

        lines.append(machine_line())
    except Exception:
        pass
    for venv, found in (venv_versions or {}).items():
        text = ", ".join(f"{k} {v}" for k, v in found.items()) if found else "(venv missing)"
        lines.append(f"- {venv} venv: {text}")
    recovered = sorted({r["recovered"] for r in latest.values() if r.get("recovered")})
    for origin in recovered:
        lines.append(
            f"- † recovered from {origin}: measured on the machine and at the commits the "
            "campaign notes below name, not rerun here"
        )
    commits = sorted(
        {r.get("trainforge_commit") for r in latest.values() if r.get("trainforge_commit")}
    )
    if commits:
        lines.append(f"- trainforge commit(s) measured: {', '.join(commits)}")
    lines += [
        "- Each table split once 75/25 (stratified for classes, random_state 0); every tool "
        "trains on the 75% and is scored here on the 25% from its prediction file. ROC AUC: "
        "higher is better; log loss and RMSE: lower is better. "
        "`s`: wall seconds; for trainforge the whole `trainforge train` process, for AutoGluon "
        "and FLAML the `fit` call (in brackets the whole child process: imports, reading the "
        "data, fit, predicting the test rows). `load`: the highest 1-minute load average "
        "when one of the table's fits began (2 cores).",
        '- AG default = `presets="medium_quality"`, AG best = `presets="best_quality"`; both '
        "with bagged folds and DyStack kept sequential and in-process (no Ray).",
        "",
    ]
    counts = {}
    for limit in limits:
        lines += [
            f"### {limit:g} s limit",
            "",
            "| dataset | metric | trainforge | s | best (trials) | AG default | s | AG best "
            "| s | FLAML | s | FLAML best | best tool | load |",
            "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|",
        ]
        for name in datasets:
            got = {t: latest.get((name, limit, t)) for t in TOOLS}
            present = [r for r in got.values() if r]
            if not present:
                continue
            task = present[0]["task"]
            cells = [name, METRIC[task]]
            for tool in TOOLS:
                record = got[tool]
                if record is None:
                    cells += ["", ""]
                elif "error" in record:
                    cells += ["error: " + record["error"][:120].replace("|", "/"), _seconds(record)]
                else:
                    mark = " †" if record.get("recovered") else ""
                    cells += [_fmt(record["score"]) + mark, _seconds(record)]
                if tool == "trainforge":
                    if record and "error" not in record:
                        cells.append(f"{record.get('best')} ({record.get('trials')})")
                    else:
                        cells.append("")
            flaml = got["flaml"]
            cells.insert(11, flaml.get("best", "") if flaml and "error" not in flaml else "")
            scored = {t: r["score"] for t, r in got.items() if r and "score" in r}
            if scored:
                pick = max if HIGHER_IS_BETTER[task] else min
                top = pick(scored.values())
                winners = [LABELS[t] for t, v in scored.items() if abs(v - top) < 1e-12]
                cells.append(" = ".join(winners))
            else:
                cells.append("")
            cells.append(f"{max(r['load'] for r in present):.1f}")
            lines.append("| " + " | ".join(cells) + " |")
            ours = scored.get("trainforge")
            ag = [scored[t] for t in AG_PRESETS if t in scored]
            tally = counts.setdefault(limit, {"ag": [0, 0], "flaml": [0, 0]})
            if ours is not None and ag:
                best_ag = max(ag) if HIGHER_IS_BETTER[task] else min(ag)
                tally["ag"][1] += 1
                tally["ag"][0] += _better(task, ours, best_ag)
            if ours is not None and "flaml" in scored:
                tally["flaml"][1] += 1
                tally["flaml"][0] += _better(task, ours, scored["flaml"])
        lines.append("")
    if {60.0, 300.0} <= set(limits):
        lines += more_time(latest, datasets, 60.0, 300.0)
    lines += against_autogluon(latest, datasets, limits)
    lines += ["### How often trainforge is ahead", ""]
    for limit, tally in counts.items():
        lines.append(
            f"- {limit:g} s: ahead of the better AutoGluon preset (picked per table by its test "
            f"score, so AutoGluon's best case) on {tally['ag'][0]} of {tally['ag'][1]} tables; "
            f"ahead of FLAML on {tally['flaml'][0]} of {tally['flaml'][1]} tables."
        )
    return "\n".join(lines) + "\n"


def venv_versions() -> dict:
    """Package versions read from each tool's venv."""
    script = (
        "import json, sys\nfrom importlib.metadata import version, PackageNotFoundError\n"
        "out = {}\nfor n in sys.argv[1:]:\n    try: out[n] = version(n)\n"
        "    except PackageNotFoundError: pass\nprint(json.dumps(out))"
    )
    found = {}
    for venv in ("trainforge", "autogluon", "flaml"):
        python = PYTHONS[venv]
        if not python.is_file():
            found[venv] = {}
            continue
        done = subprocess.run(
            [str(python), "-c", script, *PACKAGES[venv]],
            capture_output=True,
            text=True,
            env=_clean_env(),
        )
        found[venv] = json.loads(done.stdout) if done.returncode == 0 else {}
    return found


def write_section(text: str) -> None:
    from common import replace_section

    replace_section(RESULTS, SECTION, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", metavar="JOB", help=argparse.SUPPRESS)
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"from {','.join(TOOLS)}")
    parser.add_argument(
        "--datasets", default="all", help="names (shared or catalogue), or all / shared / held_out"
    )
    parser.add_argument("--limits", default="60,300", help="seconds, comma-separated")
    parser.add_argument("--out", type=Path, default=LOG, help="the JSON-lines results file")
    parser.add_argument("--redo", action="store_true", help="rerun combinations already logged")
    parser.add_argument(
        "--retry-errors",
        action="store_true",
        help="rerun combinations whose logged record is an error",
    )
    parser.add_argument("--report", action="store_true", help="print the tables from the log")
    parser.add_argument("--write", action="store_true", help="with --report: update RESULTS.md")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    if args.child:
        job = json.loads(Path(args.child).read_text())
        child = child_flaml if job["tool"] == "flaml" else child_autogluon
        result = child(job)
        Path(job["result"]).write_text(json.dumps(result, default=str))
        return
    args.out = args.out.resolve()
    if args.report or args.write:
        text = report(args.out, venv_versions())
        print(text)
        if args.write:
            write_section(text)
            print(f"updated {RESULTS.relative_to(ROOT)}", file=sys.stderr)
        return
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise SystemExit(f"unknown tools {unknown}; choose from {','.join(TOOLS)}")
    limits = [float(x) for x in args.limits.split(",") if x.strip()]
    tables = Tables()
    names = tables.resolve(args.datasets)
    campaign(args, tables, names, limits, tools)


if __name__ == "__main__":
    main()
