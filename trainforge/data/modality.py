"""Text and sequence data in a run: which columns hold them, the task, and their preprocessing.

A run's data is always a table. Text is one column of it (role ``text``); a sequence is a row
of numeric columns read in order (role ``sequence``; arrays and npz files arrive with columns
named ``t<step>.c<channel>``, which also says how many channels there are). The modality of a
schema is ``text`` when a column has the text role, ``sequence`` when columns have the
sequence role, and ``table`` otherwise; families say which modalities they take.

``task`` may be ``text_classification``, ``text_regression``, ``sequence_classification`` or
``sequence_regression``; with ``auto``, a column of free text or columns from a 3-D array are
recognised as such. Either way the run's task becomes ``binary``, ``multiclass`` or
``regression``, so metrics and the leaderboard work as for tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainforge.data import sequences
from trainforge.data.schema import infer_task
from trainforge.errors import DataError

MODAL_TASKS = {
    "text_classification": ("text", "classification"),
    "text_regression": ("text", "regression"),
    "sequence_classification": ("sequence", "classification"),
    "sequence_regression": ("sequence", "regression"),
}
FREE_TEXT_WORDS = 4  # median words per value from which a string column counts as free text


def resolve(
    frame: pd.DataFrame, target: str, roles: dict[str, str], task: str
) -> tuple[str, dict[str, str], list[str]]:
    """The table task, column roles and notices for text or sequence data in ``frame``.

    Tables pass through unchanged. Raises DataError when a text task finds no text column.
    """
    modality, kind = MODAL_TASKS.get(task, (None, None))
    features = [c for c in frame.columns if c != target and roles.get(c) != "ignore"]
    if modality is None:
        modality = _detected(frame, features, roles, task)
        if modality is None:
            return task, roles, []
        if modality == "text" and target in frame.columns:
            mixed = _text_in_table(frame, features, roles)
            if mixed is not None:  # free text beside other columns: a table with text features
                return task, *mixed
    if target not in frame.columns:
        return task, roles, []  # infer_schema names the missing target
    if modality == "text":
        roles, notices = _text_roles(frame, features, roles, task)
    else:
        roles, notices = _sequence_roles(frame, features, roles)
    if kind is None and task == "auto":  # as for a table: a real-valued target is regression
        return infer_task(frame[target], task), roles, notices
    if kind is None:
        kind = "regression" if task == "regression" else "classification"
    return _table_task(frame[target], kind, task), roles, notices


def _detected(frame, features: list[str], roles: dict[str, str], task: str) -> str | None:
    """Text or sequence when roles say so; with task ``auto`` also when the data looks so."""
    set_roles = set(roles.values())
    if "text" in set_roles:
        return "text"
    if "sequence" in set_roles:
        return "sequence"
    if task != "auto":
        return None
    if sequences.is_flat(features):
        return "sequence"
    if any(_free_text(frame[c]) for c in features if c not in roles):
        return "text"
    return None


def _text_in_table(frame, features: list[str], roles: dict[str, str]):
    """``(roles, notices)`` for a table whose free-text columns are features beside others
    (TF-IDF features inside the preprocessing), or None when there is nothing but text."""
    text = [
        c for c in features if roles.get(c) == "text" or (c not in roles and _free_text(frame[c]))
    ]
    others = [c for c in features if c not in text]
    if not text or not others:
        return None
    verb = "holds" if len(text) == 1 else "hold"
    notice = (
        f"{', '.join(map(repr, text))} {verb} free text: read as TF-IDF features beside the "
        "other columns (set task text_classification or text_regression to train text models "
        "on the text alone)"
    )
    return {**roles, **{c: "text" for c in text}}, [notice]


def _free_text(series: pd.Series) -> bool:
    """Strings of several words, mostly distinct: messages, reviews, descriptions."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    present = series.dropna().iloc[:2000]  # a sample: cheap on large tables
    if len(present) < 20 or not all(isinstance(v, str) for v in present.iloc[:200]):
        return False
    words = present.str.split().str.len()
    return bool(words.median() >= FREE_TEXT_WORDS and present.nunique() >= 0.5 * len(present))


def _text_roles(frame, features, roles, task) -> tuple[dict[str, str], list[str]]:
    chosen = [c for c in features if roles.get(c) == "text"]
    if len(chosen) > 1:
        raise DataError(
            f"data.columns gives the text role to {len(chosen)} columns ({', '.join(chosen)}); "
            "text models read one text column"
        )
    if not chosen:
        candidates = [c for c in features if c not in roles and _texty(frame[c])]
        if not candidates:
            raise DataError(
                f"task {task}: the data has no text column (columns: "
                f"{', '.join(map(repr, features)) or 'none'}); add one, or name it with "
                "data.columns: {<column>: text}"
            )
        chosen = [max(candidates, key=lambda c: frame[c].dropna().astype(str).str.len().mean())]
    column = chosen[0]
    others = [c for c in features if c != column]
    notices = [f"column {column!r} holds the text the models read"]
    if others:
        notices.append(
            f"text models use only {column!r}; left out: {', '.join(map(repr, others))} "
            "(set task to binary, multiclass or regression to train on the table instead)"
        )
    return {**{c: "ignore" for c in others}, column: "text"}, notices


def _texty(series: pd.Series) -> bool:
    """Strings that could be text: several words, or mostly distinct values (not a category
    such as red/green/blue)."""
    present = series.dropna()
    if not len(present) or not all(isinstance(v, str) for v in present.iloc[:200]):
        return False
    words = present.astype(str).str.split().str.len()
    return bool(words.median() >= 2 or present.nunique() >= 0.5 * len(present))


def _sequence_roles(frame, features, roles) -> tuple[dict[str, str], list[str]]:
    columns = [c for c in features if roles.get(c, "sequence") == "sequence"]
    if not columns:
        raise DataError("sequence task: the data has no columns to read as a series")
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    numbers = frame[columns].apply(pd.to_numeric, errors="coerce") if text else frame[columns]
    if text and numbers[text].isna().sum().sum() > frame[text].isna().sum().sum():
        raise DataError(
            f"sequence task: column {text[0]!r} holds text; series must be numbers (one series "
            "per row, one column per time step)"
        )
    channels = sequences.flat_channels(columns)
    sequences.series_lengths(sequences.as_series(numbers.to_numpy(np.float32), channels))
    notice = f"{len(frame)} series of {len(columns) // channels} steps x {channels} channel(s)"
    return {**roles, **{c: "sequence" for c in columns}}, [notice]


def _table_task(y: pd.Series, kind: str, task: str) -> str:
    if kind == "regression":
        return "regression"
    if task in ("binary", "multiclass"):
        return task
    return "binary" if y.dropna().nunique() == 2 else "multiclass"


# -- what the rest of a run needs ------------------------------------------------------------


def modality_of(schema) -> tuple[str, int]:
    """``(modality, channels)`` of a schema: ``table``, ``text`` or ``sequence``. Text beside
    other columns is a table (its text columns become TF-IDF features)."""
    roles = {c.role for c in schema.columns}
    if roles == {"text"}:
        return "text", 1
    if "sequence" in roles:
        names = [c.name for c in schema.columns if c.role == "sequence"]
        return "sequence", sequences.flat_channels(names)
    return "table", 1


def build_inputs(schema, prep):
    """The preprocessing step for text or sequence data (what ``build_preprocessor`` returns
    for tables): the text column as is or as TF-IDF, or the series columns as they are or
    flattened and scaled (NaN padding as 0) for models that read a row of numbers."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    modality, _ = modality_of(schema)
    if modality == "text":
        column = next(c.name for c in schema.columns if c.role == "text")
        if prep.vectorize == "tfidf":
            tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
            return ColumnTransformer([("text", tfidf, column)])
        return ColumnTransformer([("text", "passthrough", [column])])
    columns = [c.name for c in schema.columns if c.role == "sequence"]
    if prep.scale:
        zero = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)
        return ColumnTransformer([("series", make_pipeline(zero, StandardScaler()), columns)])
    return ColumnTransformer([("series", "passthrough", columns)])
