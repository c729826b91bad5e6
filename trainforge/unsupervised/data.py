"""Data for clustering and reduction: every column a feature except an optional labels column.

There is no target and no validation split: these methods describe the rows they are given, so
they are fitted and scored on all of them. A labels column named in the spec is read only to
score the result (ARI/NMI, colours in the plots), never as a feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainforge.data.features import feature_frame
from trainforge.data.preprocess import ONEHOT_MAX_LEVELS
from trainforge.data.read import file_sha256, frame_sha256, read_table
from trainforge.data.schema import Column, Schema, _datetime_parts, _infer_role, _list
from trainforge.errors import DataError, SpecError
from trainforge.spec import DataSpec


@dataclass
class UnlabeledData:
    """What an unsupervised candidate needs.

    Attributes:
        labels: the labels column's values (evaluation only), or None.
        fingerprints: sha256 of the input file (or of the in-memory frame), as for runs.
    """

    schema: Schema
    X: pd.DataFrame
    labels: np.ndarray | None
    fingerprints: dict[str, str]
    notices: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.schema.task


def load_unlabeled(spec: DataSpec, task: str, frame: pd.DataFrame | None = None) -> UnlabeledData:
    """Read and type the data of a clustering or reduction spec (or the frame given)."""
    if spec.validation is not None:
        raise SpecError(
            f"data.validation: a {task} task is fitted and scored on all rows; remove it"
        )
    if spec.split.strategy == "cv":
        raise SpecError(f"data.split: a {task} task has no validation split; remove it")
    if frame is not None:
        fingerprint = f"frame:{frame_sha256(frame)}"
    elif spec.train is None:
        raise DataError("data.train: no train data given; name a file or pass a frame")
    else:
        frame = read_table(spec.train, spec.sep, spec.decimal)
        fingerprint = f"sha256:{file_sha256(spec.train)}"
    if len(frame) < 2:
        raise DataError(f"{task} needs at least 2 rows; the data has {len(frame)}")
    labels = None
    if spec.labels is not None:
        if spec.labels not in frame.columns:
            raise DataError(
                f"data.labels: column {spec.labels!r} is not in the data; columns are: "
                f"{_list(frame.columns)}"
            )
        labels = frame[spec.labels].to_numpy()
    roles = {k: v.value for k, v in spec.columns.items()}
    schema, notices = infer_unlabeled_schema(frame, spec.labels, roles, task)
    X = feature_frame(frame, schema)
    return UnlabeledData(schema, X, labels, {"train": fingerprint}, notices)


def infer_unlabeled_schema(
    frame: pd.DataFrame, labels: str | None, roles: dict[str, str], task: str
) -> tuple[Schema, list[str]]:
    """Column roles as for supervised data, with two differences.

    Categorical columns with more than ONEHOT_MAX_LEVELS levels are dropped (target encoding
    needs a target); dropped columns are reported in one notice per reason, since image-like
    tables can have hundreds of constant columns.
    """
    unknown = sorted(set(roles) - set(frame.columns))
    if unknown:
        raise DataError(f"data.columns names {_list(unknown)}, which the data does not have")
    columns, dropped, reasons = [], [], {}
    for name in frame.columns:
        if name == labels:
            continue
        role, reason = roles.get(name), None
        if role is None:
            role, reason = _infer_role(frame[name])
        levels = int(frame[name].nunique(dropna=True))
        if role == "categorical" and levels > ONEHOT_MAX_LEVELS and name not in roles:
            role = "ignore"
            reason = f"categorical with more than {ONEHOT_MAX_LEVELS} levels"
        if role == "ignore":
            dropped.append(name)
            if reason:
                reasons.setdefault(reason, []).append(name)
            continue
        parts = _datetime_parts(frame[name]) if role == "datetime" else ()
        columns.append(Column(name, role, levels, parts))
    notices = [
        f"{len(names)} column(s) dropped ({reason}): {_list(names)}; set a role to use one"
        for reason, names in reasons.items()
    ]
    if not columns:
        raise DataError(_nothing_left(frame, labels, reasons))
    return Schema("", task, tuple(columns), (), tuple(dropped)), notices


def _nothing_left(frame: pd.DataFrame, labels: str | None, reasons: dict) -> str:
    constant = reasons.get("it holds a single value", [])
    features = [c for c in frame.columns if c != labels]
    if features and len(constant) == len(features):
        return (
            f"every column holds a single value ({_list(constant)}); clustering and "
            "reduction need columns that vary between rows"
        )
    return "no usable feature columns are left; check the data and column roles"
