"""A table of mixed columns <-> a float32 matrix a generator can learn, and back.

Numeric columns become one standardised value, followed by a missing indicator (1.0 = missing)
when the training column had missing values; a missing value's own slot holds 0, the mean.
Categorical columns (strings, objects, pandas categories, booleans) become one-hot blocks,
with missing values as a level of their own. Decoding reverses this for any matrix of the
right width, generated or not: numbers are clipped to the training range and rounded where the
training column held whole numbers only, each block's largest entry picks its level, and a
value is missing only where the training column had missing values and the indicator (or the
missing level) says so. The columns come back in training order with their dtypes.

The state is plain JSON (``to_json`` / ``from_json``), so a saved generator never unpickles
anything. ``spans`` tells a generator which output columns form one-hot blocks (to apply a
softmax per block) and which are missing indicators (a sigmoid).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from trainforge.errors import DataError

NUMERIC, CATEGORICAL = "numeric", "categorical"
FORMAT = "trainforge.table_codec/1"


class Span(NamedTuple):
    """Where one part of a column sits in the encoded matrix: ``matrix[:, start:stop]``.

    ``part`` is ``value`` (a standardised number), ``missing`` (a 0/1 indicator) or ``levels``
    (a one-hot block, one column per level)."""

    column: str
    part: str
    start: int
    stop: int


@dataclass
class Column:
    """What the codec learned about one training column."""

    name: str
    kind: str  # NUMERIC or CATEGORICAL
    dtype: str  # the training column's pandas dtype, by name
    has_missing: bool = False
    levels: list = field(default_factory=list)  # categorical: block order; None = missing
    mean: float = 0.0
    scale: float = 1.0
    low: float = 0.0
    high: float = 0.0
    integer: bool = False  # numeric: whole numbers only, so generated values are rounded

    @property
    def width(self) -> int:
        """Output columns this column takes in the encoded matrix."""
        if self.kind == CATEGORICAL:
            return len(self.levels)
        return 2 if self.has_missing else 1

    def restore(self, values: np.ndarray) -> pd.Series:
        """A column like the training one from raw generated values: floats with NaN for
        missing (numeric; clipped to the training range, rounded if ``integer``) or level
        positions (categorical)."""
        if self.kind == NUMERIC:
            numbers = np.clip(np.asarray(values, dtype=np.float64), self.low, self.high)
            if self.integer:
                numbers = np.round(numbers)
            return pd.Series(numbers, name=self.name).astype(self.dtype)
        lookup = np.array([np.nan if v is None else v for v in self.levels], dtype=object)
        chosen = lookup[np.asarray(values, dtype=np.int64)]
        if self.dtype == "category":
            kept = [v for v in self.levels if v is not None]
            return pd.Series(pd.Categorical(chosen, categories=kept), name=self.name)
        return pd.Series(chosen, name=self.name).astype(self.dtype)


def column_kind(series: pd.Series) -> str:
    """``numeric`` for numbers (booleans excluded), ``categorical`` for strings, objects,
    categories and booleans.

    Raises:
        DataError: for datetimes, durations and complex numbers, which the codec cannot encode.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return CATEGORICAL
    if pd.api.types.is_complex_dtype(dtype) or dtype.kind in "mM":
        raise DataError(
            f"column {series.name!r} holds {dtype} values, which generation cannot encode; "
            "convert it to numbers or text first"
        )
    if pd.api.types.is_numeric_dtype(dtype):
        return NUMERIC
    return CATEGORICAL


class TableCodec:
    """Encodes a DataFrame as a float32 matrix and decodes matrices back (see the module doc)."""

    def __init__(self):
        self.columns_: list[Column] = []

    def fit(self, frame: pd.DataFrame) -> TableCodec:
        """Learn each column's kind, dtype, scale, range and levels from ``frame``.

        Raises:
            DataError: on an empty frame, repeated column names, a numeric column without any
                value or with infinite values, or a level that JSON cannot hold.
        """
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise DataError("generation needs a table with at least one row and one column")
        if frame.columns.has_duplicates:
            raise DataError("the table repeats column names; give every column its own name")
        self.columns_ = [_learn(frame[name]) for name in frame.columns]
        return self

    @property
    def width(self) -> int:
        """Columns of the encoded matrix."""
        return sum(column.width for column in self.columns_)

    @property
    def spans(self) -> list[Span]:
        """Every part of the encoded matrix in order (see ``Span``)."""
        spans, start = [], 0
        for column in self.columns_:
            if column.kind == CATEGORICAL:
                spans.append(Span(column.name, "levels", start, start + column.width))
            else:
                spans.append(Span(column.name, "value", start, start + 1))
                if column.has_missing:
                    spans.append(Span(column.name, "missing", start + 1, start + 2))
            start += column.width
        return spans

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """``frame`` as a float32 matrix ``(rows, width)``.

        Rows of other tables (held-out or generated) encode too: a level not seen in fitting
        gives an all-zero block, and a missing number in a column that had none gives 0.

        Raises:
            DataError: when ``frame`` lacks one of the training columns.
        """
        lacking = [c.name for c in self.columns_ if c.name not in frame.columns]
        if lacking:
            raise DataError(f"the table lacks the column(s) {lacking} the codec was fitted on")
        out = np.zeros((len(frame), self.width), dtype=np.float32)
        start = 0
        for column in self.columns_:
            out[:, start : start + column.width] = _encode(column, frame[column.name])
            start += column.width
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        """A table like the training one from a matrix ``(rows, width)`` (see the module doc)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.width:
            raise DataError(f"expected a matrix of {self.width} columns, got {matrix.shape}")
        parts, start = {}, 0
        for column in self.columns_:
            block = matrix[:, start : start + column.width]
            if column.kind == CATEGORICAL:
                parts[column.name] = column.restore(block.argmax(axis=1))
            else:
                numbers = block[:, 0] * column.scale + column.mean
                if column.has_missing:
                    numbers[block[:, 1] > 0.5] = np.nan
                parts[column.name] = column.restore(numbers)
            start += column.width
        return pd.DataFrame(parts)

    def state(self) -> dict:
        """The fitted state as plain JSON values (for generators that save a codec inside
        their own state)."""
        return {"format": FORMAT, "columns": [asdict(c) for c in self.columns_]}

    @classmethod
    def from_state(cls, state: dict) -> TableCodec:
        """A codec from ``state()``'s dict."""
        if state.get("format") != FORMAT:
            raise DataError(f"not a saved table codec (format {state.get('format')!r})")
        codec = cls()
        codec.columns_ = [Column(**column) for column in state["columns"]]
        return codec

    def to_json(self) -> str:
        """The fitted state as a JSON text."""
        return json.dumps(self.state())

    @classmethod
    def from_json(cls, text: str) -> TableCodec:
        """A codec from ``to_json``'s text."""
        return cls.from_state(json.loads(text))


def _learn(series: pd.Series) -> Column:
    kind = column_kind(series)
    missing = series.isna()
    column = Column(series.name, kind, str(series.dtype), has_missing=bool(missing.any()))
    if kind == CATEGORICAL:
        present = series[~missing]
        if isinstance(series.dtype, pd.CategoricalDtype):
            present = pd.Series(series.cat.categories)
        column.levels = [_plain(v, series.name) for v in pd.unique(present)]
        if column.has_missing:
            column.levels.append(None)
        return column
    values = series[~missing].to_numpy(dtype=np.float64)
    if len(values) == 0 or not np.isfinite(values).all():
        raise DataError(
            f"numeric column {series.name!r} has no values or infinite ones; drop or fix it"
        )
    column.mean, column.low, column.high = float(values.mean()), values.min(), values.max()
    column.low, column.high = float(column.low), float(column.high)
    column.scale = float(values.std()) or 1.0
    column.integer = bool(np.all(values == np.round(values)))
    return column


def _plain(level, name) -> str | bool | int | float:
    """A level as a JSON value (numpy scalars become Python ones)."""
    if isinstance(level, np.generic):
        level = level.item()
    if not isinstance(level, (str, bool, int, float)):
        raise DataError(
            f"column {name!r} holds a {type(level).__name__} value; generation keeps levels as "
            "text, numbers or booleans, so convert the column first"
        )
    return level


def _encode(column: Column, series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy()
    if column.kind == NUMERIC:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        scaled = np.where(missing, 0.0, (values - column.mean) / column.scale)
        return np.column_stack([scaled, missing]) if column.has_missing else scaled[:, None]
    position = {level: i for i, level in enumerate(column.levels) if level is not None}
    codes = series.astype(object).map(position).to_numpy(np.float64, na_value=np.nan, copy=True)
    if column.has_missing:
        codes[missing] = column.levels.index(None)
    block = np.zeros((len(series), column.width))
    seen = ~np.isnan(codes)
    block[np.flatnonzero(seen), codes[seen].astype(np.int64)] = 1.0
    return block
