"""Two simple, seeded table generators: the floor any learned generator has to beat.

``IndependentColumns`` draws each column from its own empirical distribution, so it keeps every
column's shape and loses every relation between columns. ``GaussianCopula`` keeps the same
columns and adds their rank correlations: each column is mapped to normal scores through its
empirical distribution, the scores' correlation matrix is estimated, and sampling draws
correlated normals and maps them back through each column's quantile function.

Both describe a column by the same marginal on the unit interval: a numeric column's missing
values take the bottom ``[0, p_missing)`` and its values the rest, through the interpolated
empirical quantile function; a categorical column's levels take intervals as wide as their
frequencies (missing is a level of its own). A uniform number in [0, 1] thus picks a value,
and the generators differ only in how they draw those numbers. Their state is plain JSON.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from trainforge.errors import DataError
from trainforge.generation.table_codec import CATEGORICAL, TableCodec

# Points of the empirical quantile function kept per numeric column: enough to follow any
# shape a table of thousands of rows can show, few enough to keep the saved state small.
QUANTILE_POINTS = 1001


class Marginals:
    """Each column's distribution as a map from the unit interval to its values."""

    def __init__(self, codec: TableCodec, columns: list[dict]):
        self.codec = codec
        self.columns = columns  # numeric: missing, quantiles; categorical: cumulative

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> Marginals:
        """The empirical marginals of ``frame``'s columns."""
        codec = TableCodec().fit(frame)
        columns = []
        for column, levels in zip(codec.columns_, _level_codes(codec, frame)):
            if column.kind == CATEGORICAL:
                counts = np.bincount(levels, minlength=column.width)
                cumulative = np.cumsum(counts) / counts.sum()
                cumulative[-1] = 1.0
                columns.append({"cumulative": cumulative.tolist()})
            else:
                series = frame[column.name]
                values = series.dropna().to_numpy(dtype=np.float64)
                points = np.linspace(0, 1, min(QUANTILE_POINTS, len(values)))
                quantiles = np.quantile(values, points).tolist()
                columns.append({"missing": float(series.isna().mean()), "quantiles": quantiles})
        return cls(codec, columns)

    def to_uniform(self, frame: pd.DataFrame) -> np.ndarray:
        """Each training row's place in each column's marginal ``(rows, columns)``: a number's
        mid-rank, a level's or the missing values' interval midpoint."""
        out = np.empty((len(frame), len(self.columns)))
        pairs = zip(self.codec.columns_, self.columns, _level_codes(self.codec, frame))
        for j, (column, marginal, levels) in enumerate(pairs):
            if column.kind == CATEGORICAL:
                upper = np.asarray(marginal["cumulative"])
                lower = np.concatenate([[0.0], upper[:-1]])
                out[:, j] = (lower[levels] + upper[levels]) / 2
                continue
            values = frame[column.name].to_numpy(dtype=np.float64, na_value=np.nan)
            missing, present = marginal["missing"], ~np.isnan(values)
            ranks = stats.rankdata(values[present]) / (present.sum() + 1)
            out[:, j] = missing / 2
            out[present, j] = missing + (1 - missing) * ranks
        return out

    def from_uniform(self, uniform: np.ndarray) -> pd.DataFrame:
        """A table of the training columns and dtypes from numbers in [0, 1]
        ``(rows, columns)``, one column of numbers per training column."""
        parts = {}
        for j, (column, marginal) in enumerate(zip(self.codec.columns_, self.columns)):
            u = uniform[:, j]
            if column.kind == CATEGORICAL:
                levels = np.searchsorted(marginal["cumulative"], u, side="right")
                parts[column.name] = column.restore(np.minimum(levels, column.width - 1))
                continue
            missing, quantiles = marginal["missing"], np.asarray(marginal["quantiles"])
            where = np.clip((u - missing) / (1 - missing), 0, 1)
            values = np.interp(where, np.linspace(0, 1, len(quantiles)), quantiles)
            values[u < missing] = np.nan
            parts[column.name] = column.restore(values)
        return pd.DataFrame(parts)

    def state(self) -> dict:
        """Plain JSON values."""
        return {"codec": self.codec.state(), "columns": self.columns}

    @classmethod
    def from_state(cls, state: dict) -> Marginals:
        return cls(TableCodec.from_state(state["codec"]), state["columns"])


class IndependentColumns:
    """Samples every column on its own from its empirical distribution (see the module doc)."""

    FORMAT = "trainforge.independent_columns/1"

    def fit(self, frame: pd.DataFrame) -> IndependentColumns:
        """Learn each column's distribution from ``frame``."""
        self.marginals_ = Marginals.fit(frame)
        return self

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` rows with the training columns; the same seed gives the same rows."""
        uniform = np.random.default_rng(seed).random((n, len(self.marginals_.columns)))
        return self.marginals_.from_uniform(uniform)

    def to_json(self) -> str:
        """The fitted state as a JSON text."""
        return json.dumps({"format": self.FORMAT, "marginals": self.marginals_.state()})

    @classmethod
    def from_json(cls, text: str) -> IndependentColumns:
        """A fitted generator from ``to_json``'s text."""
        generator = cls()
        generator.marginals_ = Marginals.from_state(_state(text, cls.FORMAT)["marginals"])
        return generator


class GaussianCopula:
    """Samples rows whose columns keep their distributions and their rank correlations (see
    the module doc)."""

    FORMAT = "trainforge.gaussian_copula/1"

    def fit(self, frame: pd.DataFrame) -> GaussianCopula:
        """Learn each column's distribution and the normal scores' correlations."""
        self.marginals_ = Marginals.fit(frame)
        scores = stats.norm.ppf(self.marginals_.to_uniform(frame))
        with np.errstate(invalid="ignore", divide="ignore"):  # constant columns give NaN
            correlation = np.atleast_2d(np.corrcoef(scores, rowvar=False))
        correlation = np.nan_to_num(correlation)  # a constant column correlates with nothing
        np.fill_diagonal(correlation, 1.0)
        self.correlation_ = correlation
        return self

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` rows with the training columns; the same seed gives the same rows."""
        eigenvalues, vectors = np.linalg.eigh(self.correlation_)
        factor = vectors * np.sqrt(np.clip(eigenvalues, 0, None))  # factor @ factor.T = corr
        normals = np.random.default_rng(seed).standard_normal((n, len(self.correlation_)))
        return self.marginals_.from_uniform(stats.norm.cdf(normals @ factor.T))

    def to_json(self) -> str:
        """The fitted state as a JSON text."""
        return json.dumps(
            {
                "format": self.FORMAT,
                "marginals": self.marginals_.state(),
                "correlation": self.correlation_.tolist(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> GaussianCopula:
        """A fitted generator from ``to_json``'s text."""
        state = _state(text, cls.FORMAT)
        generator = cls()
        generator.marginals_ = Marginals.from_state(state["marginals"])
        generator.correlation_ = np.asarray(state["correlation"], dtype=np.float64)
        return generator


def _level_codes(codec: TableCodec, frame: pd.DataFrame) -> list[np.ndarray | None]:
    """Per codec column, each row's level position (categorical) or None (numeric)."""
    matrix = codec.encode(frame)
    blocks = {span.column: span for span in codec.spans if span.part == "levels"}
    codes = []
    for column in codec.columns_:
        span = blocks.get(column.name)
        codes.append(None if span is None else matrix[:, span.start : span.stop].argmax(axis=1))
    return codes


def _state(text: str, expected: str) -> dict:
    state = json.loads(text)
    if state.get("format") != expected:
        raise DataError(f"not a saved {expected.split('/')[0]} (format {state.get('format')!r})")
    return state
