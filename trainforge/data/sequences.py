"""Sequences (time series): arrays ``(series, time steps, channels)``, their lengths and masks.

A series may be shorter than the others: its missing steps come last and are NaN in every
channel (a wide CSV with empty trailing cells, an npz padded with NaN, or a list of arrays of
different lengths padded by ``pad_series``). A NaN before the end of a series is a gap, which
is an error: trainforge does not guess values. Tables hold series flattened as columns named
``t<step>.c<channel>``, so npz files and 3-D arrays travel through the same code as CSVs.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge.errors import DataError

_FLAT_NAME = re.compile(r"^t(\d+)\.c(\d+)$")
NPZ_TARGET = "y"


def pad_series(series) -> np.ndarray:
    """A list of arrays ``(steps[, channels])`` of any lengths -> ``(N, T, C)`` NaN-padded."""
    arrays = [np.asarray(s, dtype=np.float32) for s in series]
    arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
    if not arrays or any(a.ndim != 2 for a in arrays):
        raise DataError("sequences: give a list of arrays shaped (steps,) or (steps, channels)")
    channels = {a.shape[1] for a in arrays}
    if len(channels) > 1:
        raise DataError(f"sequences: series have different channel counts {sorted(channels)}")
    out = np.full((len(arrays), max(len(a) for a in arrays), channels.pop()), np.nan, np.float32)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = array
    return out


def as_series(X, channels: int = 1) -> np.ndarray:
    """``(N, T, C)`` float32 from a 3-D array, or a 2-D one whose rows are flattened series.

    Args:
        channels: how many channels a flattened row interleaves (step-major: t0.c0, t0.c1...).
    """
    array = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float32)
    if array.ndim == 2:
        if array.shape[1] % channels:
            raise DataError(
                f"sequences: {array.shape[1]} values per row cannot hold {channels} channels"
            )
        array = array.reshape(len(array), -1, channels)
    if array.ndim != 3:
        raise DataError(
            f"sequences: expected an array (series, steps, channels), got shape {array.shape}"
        )
    if np.isinf(array).any():
        row = int(np.isinf(array).any(axis=(1, 2)).argmax())
        raise DataError(f"sequences: series {row} holds an infinite value; replace it")
    return array


def series_lengths(array: np.ndarray) -> np.ndarray:
    """Each series' length: its steps up to the last one with a value.

    Raises:
        DataError: a series has a NaN before its end (a gap), or no values at all.
    """
    observed = ~np.isnan(array)
    any_value = observed.any(axis=2)
    steps = array.shape[1]
    lengths = np.where(any_value.any(axis=1), steps - any_value[:, ::-1].argmax(axis=1), 0)
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        raise DataError(f"sequences: series {int(empty[0])} has no values; remove it")
    inside = np.arange(steps)[None, :] < lengths[:, None]
    gaps = inside[:, :, None] & ~observed
    if gaps.any():
        row, step, channel = (int(i[0]) for i in np.nonzero(gaps))
        raise DataError(
            f"sequences: series {row} has NaN at step {step} (channel {channel}) before its "
            f"end ({int(gaps.any(axis=(1, 2)).sum())} series have gaps); fill or interpolate "
            "missing values first (only trailing steps may be missing, for shorter series)"
        )
    return lengths.astype(np.int64)


def channel_stats(array: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every observed step (training data)."""
    inside = np.arange(array.shape[1])[None, :] < lengths[:, None]
    values = array[inside].astype(np.float64)  # (observed steps, channels)
    scale = values.std(axis=0)
    return values.mean(axis=0), np.where(scale > 0, scale, 1.0)


def network_input(
    array: np.ndarray, lengths: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Scaled series with a last channel that is 1 on real steps and 0 on padding.

    The mask rides along as a channel so that the training loop, which only slices rows,
    hands each batch's mask to the network with its values.
    """
    inside = np.arange(array.shape[1])[None, :] < lengths[:, None]
    scaled = np.where(inside[:, :, None], (array - mean) / scale, 0.0)
    return np.concatenate([scaled, inside[:, :, None]], axis=2).astype(np.float32)


# -- series in tables ----------------------------------------------------------------------


def flat_names(steps: int, channels: int) -> list[str]:
    return [f"t{t}.c{c}" for t in range(steps) for c in range(channels)]


def sequence_frame(array) -> pd.DataFrame:
    """A 3-D array (or a list of series) as a table with one flattened series per row."""
    if isinstance(array, (list, tuple)) and array and np.ndim(array[0]) >= 1:
        lengths = {len(s) for s in array}
        array = pad_series(array) if len(lengths) > 1 else np.asarray(array, dtype=np.float32)
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    n, steps, channels = array.shape
    return pd.DataFrame(array.reshape(n, -1), columns=flat_names(steps, channels))


def is_flat(names) -> bool:
    """Whether every name is a flattened series column ``t<step>.c<channel>``."""
    names = list(names)
    return bool(names) and all(_FLAT_NAME.match(str(n)) for n in names)


def flat_channels(names) -> int:
    """Channels of flattened series named ``t<step>.c<channel>``; 1 for other names."""
    found = [_FLAT_NAME.match(str(n)) for n in names]
    if not found or not all(found):
        return 1
    return max(int(m[2]) for m in found) + 1


def read_npz(path: Path) -> pd.DataFrame:
    """An npz of series as a table: ``x`` or ``x_train`` flattened, plus ``y`` / ``y_train``.

    The target column is named ``y``. ``x_test`` is not training data and is left out; to
    predict on it, pass that array (or an npz holding it as ``x``) to predict.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read it as npz ({exc}); check the file") from None
    key = "x" if "x" in arrays else "x_train" if "x_train" in arrays else None
    if key is None:
        raise DataError(f"{path}: an npz of series needs an array 'x' or 'x_train'")
    frame = sequence_frame(arrays[key])
    target = arrays.get(key.replace("x", "y"))
    if target is not None:
        if len(target) != len(frame):
            raise DataError(f"{path}: {len(target)} labels for {len(frame)} series")
        frame[NPZ_TARGET] = target
    return frame
