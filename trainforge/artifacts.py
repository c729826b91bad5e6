"""What a run keeps beside each model so the report can be drawn from the folder alone.

    candidates/<name>/history.csv          one row per epoch or boosting round
    candidates/<name>/predictions.parquet  validation rows: row (its position in the training or
                                           validation file), fold, y_true, y_pred, proba_<class>
    candidates/<best>/importance.csv       permutation importance of each input column

``trainforge report RUN`` reads these files long after the run, so nothing here depends on the
data or the models still being in memory.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge.atomic import fsync_dir, write_text
from trainforge.metrics import Metric
from trainforge.model import Model

HISTORY = "history.csv"
PREDICTIONS = "predictions.parquet"
IMPORTANCE = "importance.csv"
# Permutation importance predicts n_columns * repeats times; a sample keeps it to seconds.
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
IMPORTANCE_SECONDS = 30.0  # without a time budget: enough for the repeats on typical tables
IMPORTANCE_COLUMNS = 200  # more input columns than this: a seeded sample of them
BATCH_ROWS = 20_000  # shuffled rows scored per prediction call


def save_candidate_files(result, folder: Path, schema) -> None:
    """Write the candidate's learning curve and validation predictions, when it has them."""
    if result.history:
        write_text(folder / HISTORY, pd.DataFrame(result.history).to_csv(index=False))
    if result.valid is not None:
        frame = prediction_frame(result.valid, schema)
        temporary = folder / f".{PREDICTIONS}.{uuid.uuid4().hex[:8]}.tmp"
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, folder / PREDICTIONS)
        fsync_dir(folder)


def prediction_frame(valid, schema) -> pd.DataFrame:
    """Validation rows as the report reads them: labels as text, one column per class, and
    ``fold`` under cross-validation."""
    if schema.task == "regression":
        frame = pd.DataFrame({"y_true": np.asarray(valid.y, float), "y_pred": valid.pred})
    else:
        classes = _class_names(schema)
        frame = pd.DataFrame({"y_true": classes[valid.y], "y_pred": classes[valid.pred]})
        if valid.proba is not None:
            for k, name in enumerate(classes):
                frame[f"proba_{name}"] = valid.proba[:, k]
    if valid.fold is not None and len(np.unique(valid.fold)) > 1:
        frame.insert(0, "fold", valid.fold)
    if valid.row is not None:
        frame.insert(0, "row", valid.row)
    return frame


def read_predictions(folder: Path, schema):
    """A candidate's saved validation predictions as codes and arrays (None if absent), so a
    resumed run can build its ensemble from candidates finished by an earlier attempt."""
    from trainforge.candidates import Predictions

    path = folder / PREDICTIONS
    if not path.is_file():
        return None
    frame = pd.read_parquet(path)
    fold = frame["fold"].to_numpy() if "fold" in frame else None
    row = frame["row"].to_numpy() if "row" in frame else None
    if schema.task == "regression":
        return Predictions(frame["y_true"].to_numpy(), frame["y_pred"].to_numpy(), None, fold, row)
    classes = list(_class_names(schema))
    codes = {name: k for k, name in enumerate(classes)}
    columns = [f"proba_{name}" for name in classes]
    proba = frame[columns].to_numpy() if columns[0] in frame else None
    y = frame["y_true"].map(codes).to_numpy()
    pred = frame["y_pred"].map(codes).to_numpy()
    return Predictions(y, pred, proba, fold, row)


def _class_names(schema) -> np.ndarray:
    return np.asarray([str(c) for c in schema.classes], dtype=object)


def read_history(folder: Path) -> list[dict]:
    """A candidate's saved learning curve (empty when it has none)."""
    path = folder / HISTORY
    if not path.is_file():
        return []
    return pd.read_csv(path).to_dict(orient="records")


def write_importance(
    model: Model | None, dataset, primary: Metric, folder: Path, seconds: float | None = None
) -> str | None:
    """Permutation importance of each input column for ``model`` on validation rows.

    It measures how much the primary metric drops when one column's values are shuffled, on
    the raw columns (preprocessing included), so the names are the user's own. A bagged model
    (or an ensemble of them) is measured as its first fold models, on the first fold's
    validation rows, which they never saw.

    ``seconds`` bounds the time it takes (IMPORTANCE_SECONDS when None): one timed scoring pass
    sets the repeats to what fits (at most IMPORTANCE_REPEATS); when not even one fits, nothing
    is written. Returns a notice when the repeats were cut or the importance skipped.
    """
    from threadpoolctl import threadpool_limits

    fold = dataset.folds[0] if dataset.folds else None
    if model is None or fold is None or len(fold.X_valid) < 2:
        return None
    seconds = IMPORTANCE_SECONDS if seconds is None else seconds
    if seconds <= 0:
        return "permutation importance skipped: the time limit left no time for it"
    clock = time.perf_counter()
    model = first_fold(model)  # a model kept on disk loads here, in the time given
    seconds -= time.perf_counter() - clock
    X, y = fold.X_valid, np.asarray(fold.y_valid)
    if len(X) > IMPORTANCE_ROWS:
        rows = np.sort(np.random.RandomState(0).choice(len(X), IMPORTANCE_ROWS, replace=False))
        X, y = X.iloc[rows], y[rows]
    columns, sampled, over = _groups(list(X.columns)), None, ""
    if len(columns) > IMPORTANCE_COLUMNS:  # each column costs a scoring pass per repeat
        picked = set(np.random.RandomState(0).choice(len(columns), IMPORTANCE_COLUMNS, False))
        columns = {name: group for i, (name, group) in enumerate(columns.items()) if i in picked}
        sample = f"a seeded sample of {len(columns)} of the {X.shape[1]} input columns"
        sampled, over = f"permutation importance of {sample}", f" over {sample}"

    def score(frames: list) -> list[float]:
        """The primary metric (higher is better) of each frame, predicted in one call."""
        pred, proba = model.raw_predict(pd.concat(frames) if len(frames) > 1 else frames[0])
        values = []
        for k in range(len(frames)):
            part = slice(k * len(y), (k + 1) * len(y))
            value = primary.compute(y, pred[part], None if proba is None else proba[part])
            values.append(value if primary.greater_is_better else -value)
        return values

    # Many small predictions: thread pools cost more than they give here (measured on adult
    # with histogram gradient boosting: 66 s on all threads, 9 s on one, same numbers).
    with threadpool_limits(1):
        started = time.perf_counter()
        reference = score([X])[0]
        per_repeat = (time.perf_counter() - started) * len(columns)
        repeats = min(IMPORTANCE_REPEATS, int(max(seconds, 0.0) / max(per_repeat, 1e-9)))
        if repeats < 1:
            return (
                f"permutation importance skipped: one pass{over} takes about {per_repeat:.1f} s "
                f"and {max(seconds, 0.0):.1f} s are left for it"
            )
        drops = _permuted_drops(X, columns, score, reference, repeats)
    frame = pd.DataFrame(
        {
            "feature": list(columns),
            "importance_mean": drops.mean(axis=1),
            "importance_std": drops.std(axis=1),
            "metric": primary.name,
        }
    ).sort_values("importance_mean", ascending=False, kind="stable")
    write_text(folder / IMPORTANCE, frame.to_csv(index=False))
    notes = [sampled] if sampled else []
    if repeats < IMPORTANCE_REPEATS:
        notes.append(f"permutation importance: {repeats} repeat(s) to fit in {seconds:.0f} s")
    return "; ".join(notes) or None


def _groups(columns: list) -> dict[str, list]:
    """What is shuffled together: each column, or for series flattened into ``t<step>.c<k>``
    columns each channel (a single step is nothing a user acts on; a channel is)."""
    from trainforge.data.sequences import is_flat

    if not is_flat(columns):
        return {str(c): [c] for c in columns}
    groups: dict[str, list] = {}
    for column in columns:
        groups.setdefault("channel " + str(column).split(".c")[1], []).append(column)
    return groups


def _permuted_drops(X: pd.DataFrame, groups: dict, score, reference: float, repeats: int):
    """``drops[group, repeat]``: the score lost when that group's columns are shuffled (the
    same row order for all of them). The shuffled copies of one repeat are scored in batches
    of about BATCH_ROWS rows: one prediction call per batch, not per column (a forest's call
    costs about the same for 300 rows as for 3,000)."""
    rng = np.random.RandomState(0)
    drops = np.zeros((len(groups), repeats))
    per_batch = max(1, BATCH_ROWS // max(len(X), 1))
    items = list(groups.values())
    for repeat in range(repeats):
        for start in range(0, len(items), per_batch):
            copies = []
            for columns in items[start : start + per_batch]:
                shuffled = X.copy()
                values, order = X[columns].to_numpy(), rng.permutation(len(X))
                shuffled[columns] = _donated(values, order) if len(columns) > 1 else values[order]
                copies.append(shuffled)
            for offset, value in enumerate(score(copies)):
                drops[start + offset, repeat] = reference - value
    return drops


def _donated(channel: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Each series' channel replaced by series ``order[i]``'s, stretched (linearly) to this
    series' own length: shorter series end in NaN, and a channel moved as it is would leave
    gaps or cut it short."""
    lengths = (~np.isnan(channel)).sum(axis=1)
    out = np.full(channel.shape, np.nan)
    for row, donor in enumerate(order):
        have, want = lengths[donor], lengths[row]
        if have and want:
            steps = np.linspace(0, have - 1, want)
            out[row, :want] = np.interp(steps, np.arange(have), channel[donor, :have])
    return out


def first_fold(model: Model) -> Model:
    """A bagged model's first fold model; for an ensemble or a stack, the same made of its
    members' (and its top's) first fold models, read from disk for a model kept there. Other
    models are returned as they are."""
    from trainforge.bundle import SavedModel, load_bundle
    from trainforge.model import BaggedModel, EnsembleModel, StackedModel

    if isinstance(model, SavedModel):  # only the first folds are read from disk
        loaded = model.in_memory
        return first_fold(loaded) if loaded else load_bundle(model.path, first_fold=True)
    if isinstance(model, BaggedModel):
        return model.folds[0]
    if isinstance(model, StackedModel):
        members = {name: first_fold(m) for name, m in model.members.items()}
        return StackedModel(members, first_fold(model.top), model.schema, model.threshold)
    if isinstance(model, EnsembleModel):
        members = {name: first_fold(m) for name, m in model.members.items()}
        return EnsembleModel(members, model.weights, model.schema, model.threshold, model.meta)
    return model
