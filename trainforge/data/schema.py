"""Column roles and the task, inferred from the training table (and overridable in the spec).

The schema is saved inside every model bundle: prediction data is read through the same schema,
so a model takes raw rows exactly like its training file.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from trainforge.errors import DataError

LOW_CARDINALITY_INTEGERS = 10  # integer columns with at most this many values are categorical
MAX_CLASSES_FOR_INTEGER_TARGET = 20
_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key)$|^id[_\s.-]", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    """A column the model uses. ``levels`` is the number of distinct training values."""

    name: str
    role: str
    levels: int = 0
    parts: tuple[str, ...] = ()  # for datetimes: the parts it expands into


@dataclass(frozen=True)
class Schema:
    target: str
    task: str
    columns: tuple[Column, ...]
    classes: tuple = ()  # original class labels, in the order of their integer codes
    dropped: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Schema:
        columns = tuple(
            Column(c["name"], c["role"], c["levels"], tuple(c["parts"])) for c in raw["columns"]
        )
        return cls(
            raw["target"], raw["task"], columns, tuple(raw["classes"]), tuple(raw["dropped"])
        )


def _hint(target: str, frame: pd.DataFrame) -> str:
    """What to say about a missing target: the header read with the wrong separator, a close
    name, or the columns there are."""
    from trainforge.errors import suggest

    for name in map(str, frame.columns):
        for sep in (";", "\t", "|", ","):
            if sep in name and target in (part.strip() for part in name.split(sep)):
                shown = "tab" if sep == "\t" else repr(sep)
                return (
                    f": the header {name[:60]!r} looks separated by {shown}; read the file with "
                    f"--sep {shown} (data.sep)"
                )
    close = suggest(target, [str(c) for c in frame.columns])
    return close or f"; columns are: {_list(frame.columns)}"


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    roles: dict[str, str],
    task: str,
    positive: str | None = None,
) -> tuple[Schema, list[str]]:
    """Infer each column's role and the task. Returns the schema and notices for the user.

    Args:
        frame: the training table, target included.
        target: the target column's name.
        roles: roles the user set by column name (``ignore`` drops a column).
        task: ``auto`` or the task the user asked for.
        positive: a binary task's positive class (its label as text); None: the later label.
    """
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is not in the data{_hint(target, frame)}")
    unknown = sorted(set(roles) - set(frame.columns))
    if unknown:
        raise DataError(f"data.columns names {_list(unknown)}, which the data does not have")
    y = frame[target]
    task = infer_task(y, task)
    notices: list[str] = []
    columns, dropped = [], []
    for name in frame.columns:
        if name == target:
            continue
        role, reason = roles.get(name), "set in the spec"
        if role is None:
            role, reason = _infer_role(frame[name])
        if role == "ignore":
            dropped.append(name)
            if reason != "set in the spec":
                notices.append(f"column {name!r} dropped: {reason}; set its role to use it")
            continue
        series = frame[name]
        levels = int(series.nunique(dropna=True))
        parts = _datetime_parts(series) if role == "datetime" else ()
        columns.append(Column(name, role, levels, parts))
    if not columns:
        raise DataError("no usable feature columns are left; check the data and column roles")
    classes = tuple(_class_labels(y)) if task != "regression" else ()
    if task == "binary":
        classes = _positive_last(classes, positive, target)
        notices.append(
            f"binary task: the positive class is {classes[1]!r} (ROC AUC, PR AUC, F1 and the "
            "second probability column are about it; --positive-class chooses it)"
        )
    elif positive is not None:
        raise DataError(f"data.positive_class: a {task} task has no positive class; remove it")
    return Schema(target, task, tuple(columns), classes, tuple(dropped)), notices


def _positive_last(classes: tuple, positive: str | None, target: str) -> tuple:
    """The two labels with the positive class second (its code is 1): the one named, else the
    later in sorted order."""
    if positive is None:
        return classes
    found = [c for c in classes if str(c) == str(positive)]
    if not found:
        shown = " or ".join(repr(str(c)) for c in classes)
        raise DataError(
            f"data.positive_class: {positive!r} is not a class of {target!r}; use {shown}"
        )
    return tuple(c for c in classes if c != found[0]) + (found[0],)


def infer_task(y: pd.Series, requested: str) -> str:
    """The task for a target, checking a requested task against what the target holds."""
    present = y.dropna()
    if present.empty:
        raise DataError(f"target {y.name!r} has no values; every row is missing it")
    n_values = present.nunique()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if requested == "regression":
        if not numeric:
            raise DataError(f"task regression needs a numeric target; {y.name!r} holds text")
        return requested
    if n_values < 2:
        raise DataError(
            f"target {y.name!r} has a single value ({present.iloc[0]!r}); "
            "a model needs at least two"
        )
    if requested in ("binary", "multiclass"):
        if requested == "binary" and n_values != 2:
            raise DataError(f"task binary needs 2 classes; target {y.name!r} has {n_values}")
        return requested
    if numeric:
        integral = bool(np.all(np.mod(present.to_numpy(dtype=float), 1) == 0))
        if not integral or n_values > MAX_CLASSES_FOR_INTEGER_TARGET:
            return "regression"
    return "binary" if n_values == 2 else "multiclass"


def _class_labels(y: pd.Series) -> list:
    labels = sorted(y.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
    return [v.item() if isinstance(v, np.generic) else v for v in labels]


def _infer_role(series: pd.Series) -> tuple[str, str]:
    present = series.dropna()
    if present.empty:
        return "ignore", "every value is missing"
    if present.nunique() == 1:
        return "ignore", "it holds a single value"
    if pd.api.types.is_bool_dtype(present):
        return "boolean", ""
    if pd.api.types.is_datetime64_any_dtype(present):
        return "datetime", ""
    if pd.api.types.is_numeric_dtype(present):
        return _numeric_role(series.name, present)
    return _text_role(series, present)


def _numeric_role(name, present: pd.Series) -> tuple[str, str]:
    if not pd.api.types.is_integer_dtype(present):
        values = present.to_numpy(dtype=float)
        if not np.all(np.mod(values[np.isfinite(values)], 1) == 0):
            return "numeric", ""
    n_values = present.nunique()
    if n_values == len(present) and len(present) >= 20 and pd.api.types.is_integer_dtype(present):
        if _ID_NAME.search(str(name)) or present.is_monotonic_increasing:
            return "ignore", "it looks like a row identifier (all values unique)"
    if n_values == 2 and set(present.unique().tolist()) <= {0, 1}:
        return "boolean", ""
    if n_values <= LOW_CARDINALITY_INTEGERS:
        return "categorical", ""
    return "numeric", ""


def _text_role(series: pd.Series, present: pd.Series) -> tuple[str, str]:
    text = present.astype(str).str.strip()
    if _mostly_numbers(text.iloc[:1000]):
        return _numeric_text_role(series, text)
    return _plain_text_role(text)


def _mostly_numbers(sample: pd.Series) -> bool:
    """A cheap first look, so that clearly textual columns are never parsed whole."""
    return bool(pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.5)


def _numeric_text_role(series: pd.Series, text: pd.Series) -> tuple[str, str]:
    """Numbers written as text: numeric, or an error when a few values are not numbers."""
    name = series.name
    numbers = pd.to_numeric(text, errors="coerce")
    parsed = int(numbers.notna().sum())
    if parsed == len(text):
        return _numeric_role(name, numbers)
    if parsed >= 0.9 * len(text):
        bad = text[numbers.isna()]
        row = series.index.get_loc(bad.index[0]) + 1
        raise DataError(
            f"column {name!r} is numeric but {len(bad)} value(s) are not numbers (e.g. "
            f"{bad.iloc[0]!r} in row {row}); fix them, leave the cells empty, or set the "
            "column's role to categorical"
        )
    return _plain_text_role(text)


def _plain_text_role(text: pd.Series) -> tuple[str, str]:
    if set(text.str.lower().unique()) <= {"true", "false", "yes", "no", "t", "f", "y", "n"}:
        return "boolean", ""
    if _looks_like_dates(text):
        return "datetime", ""
    if text.nunique() == len(text) and len(text) >= 20:
        return "ignore", "it looks like an identifier or free text (all values unique)"
    return "categorical", ""


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.iloc[:200]
    if not sample.str.contains(r"\d", regex=True).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def _datetime_parts(series: pd.Series) -> tuple[str, ...]:
    from trainforge.data.features import to_datetime

    values = to_datetime(series, series.name).dropna()
    parts = ["year", "month", "day", "day_of_week"]
    if (values.dt.hour != 0).any() or (values.dt.minute != 0).any():
        parts += ["hour", "minute"]
    return tuple(parts)


def _list(names) -> str:
    names = [repr(str(n)) for n in names]
    return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
