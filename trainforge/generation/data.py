"""Data for generation: the rows the generators learn, and real rows kept aside to score them.

A table's columns are generated as they are (names, types, levels; ``data.columns`` may set a
column to ``ignore``); ``data.target``, when named, is generated like the others and also
scores the samples' use for predicting it (train on generated rows, test on real ones). Images
(a folder, an npz file, a CSV of ``pixel_<row>_<col>`` columns, or an array) are generated as
their pixel columns; their labels, when the source has them (``data.labels``, by default
``label``), are never generated: they only train the quality score's feature network.

The scores need real rows no generator saw: ``data.validation`` if given, else a seeded share
``data.split.validation_fraction`` (0.2) of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainforge.data.images import image_shape_of, is_image_source, is_pixel_csv, read_images
from trainforge.data.read import file_sha256, frame_sha256, read_table
from trainforge.data.schema import Column, Schema, _list
from trainforge.errors import DataError, SpecError

MIN_ROWS = 20  # below this neither a generator nor a two-sample score means anything


@dataclass
class GenerationData:
    """What a generation run needs.

    Attributes:
        train / holdout: rows the generators learn, and real rows kept aside for the scores.
        image_shape: ``(height, width, channels)`` when the columns are pixels, else None.
        labels: the training images' labels (the quality score's features), or None.
        target: the column the utility score predicts (tables), or None.
        task: that column's task (``binary``, ``multiclass``, ``regression``), or None.
    """

    schema: Schema
    train: pd.DataFrame
    holdout: pd.DataFrame
    fingerprints: dict[str, str]
    image_shape: tuple[int, int, int] | None = None
    labels: np.ndarray | None = None
    target: str | None = None
    task: str | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def X(self) -> pd.DataFrame:  # what a resumed run compares: the rows it learns from
        return self.train


def load_generation(spec, seed: int, frame: pd.DataFrame | None = None) -> GenerationData:
    """Read, type and split the data of a generation spec (or the frame given)."""
    data = spec
    if data.split.strategy == "cv":
        raise SpecError("data.split: generation keeps real rows aside to score; use holdout")
    images = frame is None and (
        is_image_source(data.train, "image_classification") or is_pixel_csv(data.train)
    )
    if frame is not None:
        fingerprint = f"frame:{frame_sha256(frame)}"
    elif data.train is None:
        raise DataError("data.train: no train data given; name a file or pass a frame")
    else:
        fingerprint = f"sha256:{file_sha256(data.train)}"
        if images:
            frame = read_images(data.train, data.labels or "label")
        else:
            frame = read_table(data.train, data.sep, data.decimal)
    label_column = data.labels or ("label" if images else None)
    pixels = [c for c in frame.columns if c != label_column]
    shape = image_shape_of(pixels)
    if shape is None and images:
        raise DataError(f"{data.train}: could not read it as images of one size")
    if shape is not None:
        return _images(data, frame, pixels, shape, label_column, {"train": fingerprint}, seed)
    return _table(data, frame, {"train": fingerprint}, seed)


def _table(data, frame: pd.DataFrame, fingerprints: dict, seed: int) -> GenerationData:
    if data.labels is not None:
        raise SpecError("data.labels: a table's columns are all generated; name data.target")
    unknown = sorted(set(data.columns) - set(frame.columns))
    if unknown:
        raise DataError(f"data.columns names {_list(unknown)}, which the data does not have")
    dropped = [c for c, role in data.columns.items() if role.value == "ignore"]
    frame = frame.drop(columns=dropped)
    if frame.shape[1] == 0:
        raise DataError("no columns are left to generate; check data.columns")
    target, task = data.target, None
    if target is not None:
        if target not in frame.columns:
            raise DataError(
                f"data.target: column {target!r} is not in the data; columns are: "
                f"{_list(frame.columns)}"
            )
        task = _task(frame[target])
    train, holdout = _split(data, frame, seed, fingerprints)
    columns = tuple(
        Column(str(c), _role(frame[c]), int(frame[c].nunique(dropna=True))) for c in frame.columns
    )
    schema = Schema(target or "", "generation", columns, (), tuple(dropped))
    return GenerationData(schema, train, holdout, fingerprints, target=target, task=task)


def _images(data, frame, pixels, shape, label_column, fingerprints, seed) -> GenerationData:
    if data.target is not None:
        raise SpecError(
            "data.target: images are generated as pixels; name their labels data.labels (they "
            "shape the quality score, never generated)"
        )
    labels = frame[label_column] if label_column in frame.columns else None
    if data.labels is not None and labels is None:
        raise DataError(f"data.labels: column {data.labels!r} is not in the images' table")
    table = frame[pixels].assign(**({} if labels is None else {"__labels__": labels}))
    train, holdout = _split(data, table, seed, fingerprints)
    train_labels = None
    if labels is not None:
        train_labels = train.pop("__labels__").to_numpy()
        holdout = holdout.drop(columns="__labels__")
    columns = tuple(Column(str(c), "numeric", 0) for c in pixels)
    schema = Schema("", "generation", columns, (), ())
    return GenerationData(schema, train, holdout, fingerprints, shape, train_labels)


def _split(data, frame: pd.DataFrame, seed: int, fingerprints: dict):
    if len(frame) < MIN_ROWS:
        raise DataError(f"generation needs at least {MIN_ROWS} rows; the data has {len(frame)}")
    if data.validation is not None:
        holdout = read_table(data.validation, data.sep, data.decimal)
        missing = sorted(set(frame.columns) - set(holdout.columns) - {"__labels__"})
        if missing:
            raise DataError(f"data.validation lacks the training columns {_list(missing)}")
        fingerprints["validation"] = f"sha256:{file_sha256(data.validation)}"
        return frame.reset_index(drop=True), holdout[list(frame.columns)].reset_index(drop=True)
    order = np.random.default_rng(seed).permutation(len(frame))
    kept = max(1, round(len(frame) * data.split.validation_fraction))
    holdout, train = order[:kept], order[kept:]
    return (
        frame.iloc[np.sort(train)].reset_index(drop=True),
        frame.iloc[np.sort(holdout)].reset_index(drop=True),
    )


def _role(series: pd.Series) -> str:
    from trainforge.generation.table_codec import column_kind

    return "numeric" if column_kind(series) == "numeric" else "categorical"


def _task(series: pd.Series) -> str:
    values = series.dropna()
    if _role(series) == "numeric" and values.nunique() > 10:
        return "regression"
    return "binary" if values.nunique() == 2 else "multiclass"
