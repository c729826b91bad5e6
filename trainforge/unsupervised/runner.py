"""Executing a clustering or reduction RunSpec inside a run folder.

The same run folder, manifest, leaderboard and bundles as supervised runs; each candidate also
leaves the result for every training row and its figures:

    candidates/<name>/assignments.parquet   clustering: row, cluster (-1 is noise)
    candidates/<name>/embedding.parquet     reduction: row, component_1, component_2, ...
    candidates/<name>/figures/*.png         the curve a setting was chosen on; a 2-D scatter
"""

from __future__ import annotations

import math
import shutil
import time
import warnings

import numpy as np
import pandas as pd

from trainforge.candidates import (
    Candidate,
    CandidateResult,
    _distinct,
    plan,
    saved_or_failed,
    train_in_turn,
)
from trainforge.data.preprocess import build_preprocessor
from trainforge.errors import SpecError
from trainforge.leaderboard import leaderboard_frame
from trainforge.metrics import primary_metric
from trainforge.models.clustering import SCORE_SAMPLE, auto_settings
from trainforge.models.reduction import auto_components
from trainforge.models.registry import Profile
from trainforge.unsupervised import figures
from trainforge.unsupervised.data import UnlabeledData, load_unlabeled
from trainforge.unsupervised.model import UnsupervisedModel, component_names
from trainforge.unsupervised.scoring import clustering_scores, reduction_scores, sample_rows

TIMED_ROWS = 1000  # rows used to time predict/transform
# Up to this many cells (rows x columns) fits run on one thread: OpenMP's spinning threads made
# 14 small k-means fits 15x slower on a busy 2-core machine (2.6 s against 0.17 s), and a
# Gaussian mixture search on 5,000 x 663 pixels ran for over 10 minutes there without ending.
ONE_THREAD_MAX_CELLS = 20_000_000


def prepare(spec, train=None) -> tuple:
    """Read and check the data and plan the candidates, before the run has a folder (bad input
    then leaves none behind): ``(data, primary, profile, candidates, notices)``."""
    task = spec.task.value
    data = load_unlabeled(spec.data, task, train)
    primary = primary_metric(spec.metric, task)
    if primary.name in ("ari", "nmi") and data.labels is None:
        raise SpecError(f"metric: {primary.name} compares with true labels; name data.labels")
    profile = Profile(task, len(data.X), len(data.schema.columns), 0, spec.seed)
    candidates, substitutions = plan(spec.models, profile)
    notices = data.notices + substitutions + _sampling_notice(task, len(data.X))
    if spec.execution.backend != "local":
        notices.append(
            f"execution: a {task} run executes in this process (Ray runs only "
            "supervised candidates and trials)"
        )
    return data, primary, profile, candidates, notices


def train_all(spec, run, prepared: tuple, observer):
    """Fit every candidate on all rows, score, save; returns the run's RunResult."""
    from trainforge.run import RunResult, check_unchanged, inputs

    task = spec.task.value
    data, primary, profile, candidates, notices = prepared
    check_unchanged(run, spec, data)
    for message in notices:
        observer.notice(message)
    run.update(
        task=task,
        primary_metric=primary.name,
        inputs=inputs(spec, data),
        data=_summary(spec, data),
        notices=notices,
    )

    def notice(message: str) -> None:  # notices raised while fitting go to the manifest too
        notices.append(message)
        observer.notice(message)
        run.update(notices=notices)

    results, timings, best = train_in_turn(
        candidates, run, observer, primary, lambda c: _train_one(c, data, profile, run, notice)
    )
    board = _board(results, primary, task, data)
    run.write_text("leaderboard.csv", board.to_csv(index=False))
    run.update(
        best={"candidate": best.name, primary.name: best.metrics[primary.name]}, timings=timings
    )
    return RunResult(run.path, board, best.model, best.name, results)


def _sampling_notice(task: str, rows: int) -> list[str]:
    if rows <= SCORE_SAMPLE:
        return []
    scores = (
        "silhouette (also when choosing k)"
        if task == "clustering"
        else ("trustworthiness and k-NN preservation")
    )
    return [f"{scores} use a seeded sample of {SCORE_SAMPLE:,} of the {rows:,} rows"]


def _board(results, primary, task: str, data: UnlabeledData) -> pd.DataFrame:
    """The leaderboard, with clusters and noise (clustering) and without label scores when the
    spec names no labels column."""
    board = leaderboard_frame(results, primary, task)
    if data.labels is None:
        board = board.drop(columns=[c for c in ("ari", "nmi") if c in board.columns])
    if task == "clustering":
        by_name = {r.name: r.metrics for r in results}
        for column in ("clusters", "noise_fraction"):
            values = [by_name[name].get(column, math.nan) for name in board["candidate"]]
            board = board.drop(columns=column, errors="ignore")  # placed beside the costs
            board.insert(board.columns.get_loc("fit_seconds"), column, values)
    return board


def _train_one(candidate: Candidate, data: UnlabeledData, profile: Profile, run, notice):
    folder = run.candidate_dir(candidate.name)
    for stale in ("model", "figures"):
        shutil.rmtree(folder / stale, ignore_errors=True)

    def fit() -> CandidateResult:
        with _threads(data):
            return fit_candidate(candidate, data, profile, folder, notice)

    return saved_or_failed(candidate, folder, fit)


def _threads(data: UnlabeledData):
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    if data.X.size <= ONE_THREAD_MAX_CELLS:
        return threadpool_limits(limits=1)
    return nullcontext()


def fit_candidate(candidate: Candidate, data: UnlabeledData, profile: Profile, folder, notice):
    """Preprocess, choose data-driven settings, fit on all rows, score, write the row results
    and figures. Returns the result with its model.

    Args:
        notice: called with a message for the user (e.g. t-SNE fitted on a sample).
    """
    from sklearn.pipeline import Pipeline

    family, params = candidate.family, candidate.params
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        features, _ = build_preprocessor(data.schema, family.prep, profile.seed)
        X = np.asarray(features.fit_transform(data.X), dtype=np.float64)
        if data.task == "clustering":
            choice = auto_settings(family, profile, params, X)
        else:
            choice = auto_components(family, profile, params, X)
        estimator = family.build(profile, {**choice.settings, **params})
        if data.task == "clustering":
            output = np.asarray(estimator.fit_predict(X), dtype=int)
        else:
            output = _embed(estimator, X, candidate, profile, notice)
        fit_seconds = time.perf_counter() - started
    settings = {**family.initial(profile), **choice.settings, **params}
    result = CandidateResult(candidate.name, family.name, settings, fit_seconds=fit_seconds)
    result.warnings = _distinct(caught)
    result.model = UnsupervisedModel(
        Pipeline([("features", features), ("model", estimator)]), data.schema, family.name
    )
    if data.task == "clustering":
        result.metrics = clustering_scores(X, output, data.labels, profile.seed)
    else:
        result.metrics = reduction_scores(X, output, profile.seed)
    result.predict_ms_per_1k = _time_new_rows(result.model, data, candidate.family)
    _write_outputs(folder, data, X, output, choice, candidate.name, profile.seed)
    return result


def _embed(estimator, X, candidate: Candidate, profile: Profile, notice) -> np.ndarray:
    """The embedding of every row; a family with ``fit_rows`` (t-SNE) embeds a seeded sample
    of that many rows of larger data (the other rows get NaN) and says so."""
    limit = candidate.family.fit_rows
    if limit is None or len(X) <= limit:
        return np.asarray(estimator.fit_transform(X), dtype=np.float64)
    rows = sample_rows(np.arange(len(X)), profile.seed, limit)
    notice(
        f"{candidate.name}: embeds a seeded sample of {limit:,} of the {len(X):,} rows (its "
        "cost grows fast with rows); the others have no coordinates"
    )
    embedding = np.full((len(X), estimator.n_components), np.nan)
    embedding[rows] = estimator.fit_transform(X[rows])
    return embedding


def _time_new_rows(model: UnsupervisedModel, data: UnlabeledData, family) -> float:
    """Milliseconds per 1,000 rows to assign or transform raw rows (NaN if it cannot).

    Not measured for families without ``timed_predict``: UMAP's first transform compiles
    numba code, which took 22 minutes of wall time for 1,000 rows on a busy 2-core machine,
    longer than the fit itself.
    """
    if not (model.can_predict or model.can_transform) or not family.timed_predict:
        return math.nan
    rows = data.X.iloc[:TIMED_ROWS]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (model.pipeline.predict if model.can_predict else model.pipeline.transform)(rows)
    return 1e6 * (time.perf_counter() - started) / len(rows)


def _write_outputs(folder, data: UnlabeledData, X, output, choice, name: str, seed: int):
    rows = np.arange(len(X))
    if data.task == "clustering":
        frame = pd.DataFrame({"row": rows, "cluster": output})
        frame.to_parquet(folder / "assignments.parquet", index=False)
        projection = _first_two_components(X, seed)
        figures.scatter_png(
            folder / "figures" / "clusters.png",
            projection,
            output,
            f"{name}: clusters on the first two principal components",
            seed,
        )
        if data.labels is not None:
            figures.scatter_png(
                folder / "figures" / "labels.png",
                projection,
                data.labels,
                f"{name}: true labels on the first two principal components",
                seed,
            )
    else:
        frame = pd.DataFrame(output, columns=component_names(output.shape[1]))
        frame.insert(0, "row", rows)
        frame.to_parquet(folder / "embedding.parquet", index=False)
        figures.scatter_png(
            folder / "figures" / "embedding.png",
            output,
            data.labels,
            f"{name}: 2-D embedding" + (" by label" if data.labels is not None else ""),
            seed,
        )
    if choice.figure:
        figures.curve_png(
            folder / "figures" / choice.figure,
            choice.x,
            choice.y,
            choice.x_label,
            choice.y_label,
            choice.chosen,
            name,
        )


def _first_two_components(X: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if X.shape[1] < 2:
        return np.column_stack([X[:, 0], np.zeros(len(X))])
    return PCA(n_components=2, random_state=seed).fit_transform(X)


def _summary(spec, data: UnlabeledData) -> dict:
    return {
        "rows": len(data.X),
        "columns": len(data.schema.columns),
        "dropped_columns": list(data.schema.dropped),
        "labels": spec.data.labels,
        "validation": {"strategy": "none (fitted and scored on all rows)"},
    }
