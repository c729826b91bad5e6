"""Raw rows -> the typed feature frame a model's pipeline takes, through a schema.

Training and prediction both pass through ``feature_frame``, so a saved model accepts rows
exactly like its training file: extra columns are ignored, missing ones are an error, text in
numeric columns and infinite values are reported with the column and row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from trainforge.data.schema import Schema
from trainforge.errors import DataError

_TRUE = {"true", "yes", "t", "y", "1", "1.0"}
_FALSE = {"false", "no", "f", "n", "0", "0.0"}


def feature_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Select, type-check and expand the schema's columns from ``frame``.

    Numeric and boolean columns become float64, categoricals become strings (missing stays
    NaN), datetimes expand into ``name.year``, ``name.month``, ... numeric parts.
    """
    missing = [c.name for c in schema.columns if c.name not in frame.columns]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10])
        raise DataError(
            f"the data lacks {len(missing)} column(s) the model was trained on: {shown}; "
            "add them (empty cells are allowed)"
        )
    out = {}
    for column in schema.columns:
        series = frame[column.name]
        if column.role == "numeric":
            out[column.name] = to_number(series, column.name)
        elif column.role == "boolean":
            out[column.name] = to_boolean(series, column.name)
        elif column.role == "categorical":
            out[column.name] = to_category_text(series, column.name)
        elif column.role == "sequence":
            out[column.name] = to_number(series, column.name)
        elif column.role == "text":
            out[column.name] = series.where(series.notna(), "").astype(str).astype("object")
        elif column.role == "datetime":
            stamps = to_datetime(series, column.name)
            for part in column.parts:
                out[f"{column.name}.{part}"] = getattr(stamps.dt, part).astype("float64")
    return pd.DataFrame(out, index=frame.index)


def feature_roles(schema: Schema) -> dict[str, list[str]]:
    """Names of the feature frame's columns grouped as numeric (incl. booleans and datetime
    parts), categorical and text, in frame order."""
    numeric, categorical, text = [], [], []
    for column in schema.columns:
        if column.role == "categorical":
            categorical.append(column.name)
        elif column.role == "text":
            text.append(column.name)
        elif column.role == "datetime":
            numeric += [f"{column.name}.{part}" for part in column.parts]
        else:
            numeric.append(column.name)
    return {"numeric": numeric, "categorical": categorical, "text": text}


def to_number(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
    elif pd.api.types.is_numeric_dtype(series):
        values = series.astype("float64")
    else:
        text = series.astype("string").str.strip()
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = text.notna() & (text != "") & values.isna()
        if bad.any():
            first = bad.idxmax()
            raise DataError(
                f"column {name!r} is numeric but {int(bad.sum())} value(s) are not numbers (e.g. "
                f"{text[first]!r} in row {_row(series, first)}); fix them or leave the cells empty"
            )
    reject_infinite(values, name)
    return values


# Larger magnitudes overflow the squares that scaling and variance take (1e308 ** 2 is inf),
# which turns into NaN far from the column that caused it.
MAX_MAGNITUDE = 1e150


def reject_infinite(values: pd.Series, name: str) -> None:
    """Raise DataError naming the column and first row if float ``values`` hold +-inf, or
    numbers so large (beyond MAX_MAGNITUDE) that computing with them overflows."""
    numbers = values.to_numpy(dtype="float64")
    infinite = np.isinf(numbers)
    if infinite.any():
        raise DataError(
            f"column {name!r} has {int(infinite.sum())} infinite value(s) (first in row "
            f"{int(infinite.argmax()) + 1}); replace them with numbers or leave the cells empty"
        )
    huge = np.abs(np.nan_to_num(numbers)) > MAX_MAGNITUDE
    if huge.any():
        first = int(huge.argmax())
        raise DataError(
            f"column {name!r} has {int(huge.sum())} value(s) too large to compute with "
            f"({numbers[first]:.3g} in row {first + 1}; the limit is {MAX_MAGNITUDE:.0e}); "
            "rescale the column (e.g. its logarithm) or leave those cells empty"
        )


def to_boolean(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return to_number(series, name)
    text = series.astype("string").str.strip().str.lower()
    values = pd.Series(np.nan, index=series.index, dtype="float64")
    values[text.isin(_TRUE)] = 1.0
    values[text.isin(_FALSE)] = 0.0
    bad = text.notna() & values.isna()
    if bad.any():  # as unseen categories are: missing, with a warning that says so
        import warnings

        from trainforge.errors import UnseenValueWarning

        first = bad.idxmax()
        warnings.warn(
            UnseenValueWarning(
                f"column {name!r} is boolean but {int(bad.sum())} value(s) are not (first "
                f"{text[first]!r}, row {_row(series, first)}); they were read as missing"
            ),
            stacklevel=2,
        )
    return values


def to_category_text(series: pd.Series, name: str) -> pd.Series:
    """Categories as plain strings; integer codes read as 3 or 3.0 both become '3'.

    Raises:
        DataError: a float column (integer codes read as floats) holds infinite values.
    """
    if pd.api.types.is_float_dtype(series):
        reject_infinite(series, name)
        values = series.to_numpy()
        finite = np.isfinite(values)
        if np.all(np.mod(values[finite], 1) == 0):
            series = series.astype("Int64")
    present = series.notna()
    text = pd.Series(np.nan, index=series.index, dtype="object")
    text[present] = series[present].astype(str).str.strip().astype("object")
    return text


def to_datetime(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stamps = pd.to_datetime(series, errors="coerce", format="mixed")
    bad = series.notna() & stamps.isna()
    if bad.any():
        first = bad.idxmax()
        raise DataError(
            f"column {name!r} holds dates but {series[first]!r} (row {_row(series, first)}) is "
            "not one; fix it or leave the cell empty"
        )
    return stamps


def _row(series: pd.Series, label) -> int:
    """1-based data row number of an index label (the line below the header)."""
    return int(series.index.get_loc(label)) + 1
