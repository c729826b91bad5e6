"""Reading tables from files and turning arrays into frames, with errors a person can act on."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge.errors import DataError

# Cells that mean "missing" in the wild, besides pandas' own list.
MISSING_MARKERS = ["?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", ""]

_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV (either optionally gzipped) or Parquet file into a frame.

    Raises:
        DataError: the file is missing, unreadable, empty, of an unknown kind, or has duplicate
            column names.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; give a table with a header row and data")
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = suffixes[-1:] == [".gz"]
    kind = suffixes[-2] if gzipped and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    try:
        if kind in _PARQUET_SUFFIXES:
            frame = _read_parquet(path)
        elif kind == ".npz" and not gzipped:  # series: trainforge.data.sequences
            from trainforge.data.sequences import read_npz

            frame = read_npz(path)
        elif kind in _TEXT_SUFFIXES:
            frame = _read_text(path, _TEXT_SUFFIXES[kind], gzipped)
        else:
            raise DataError(
                f"{path}: unknown file kind {''.join(path.suffixes) or '(no suffix)'}; use .csv, "
                ".tsv (optionally .gz), .parquet, or .npz of series"
            )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read it ({_short(exc)}); check the file") from None
    if frame.empty:
        raise DataError(f"{path}: the table has no data rows; give at least a header and rows")
    return frame


def _read_text(path: Path, sep: str | None, gzipped: bool) -> pd.DataFrame:
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        head = handle.read(64 * 1024)
    if not head.strip():
        raise DataError(f"{path}: the file is empty; give a table with a header row and data")
    if sep is None:
        sep = _sniff_separator(head.splitlines()[0])
    header = next(csv.reader(io.StringIO(head.splitlines()[0]), delimiter=sep))
    check_unique_columns([h.strip() for h in header], str(path))
    return pd.read_csv(
        path,
        sep=sep,
        compression="gzip" if gzipped else None,
        na_values=MISSING_MARKERS,
        keep_default_na=True,
        skipinitialspace=True,
        encoding="utf-8-sig",
        low_memory=False,
    ).rename(columns=str.strip)


def _sniff_separator(header: str) -> str:
    """The separator of a ``.txt`` table's header line; a comma when it has a single column."""
    try:
        return csv.Sniffer().sniff(header, delimiters=",\t;|").delimiter
    except csv.Error:  # no candidate separator in the line: one column
        return ","


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        check_unique_columns(parquet.schema_arrow.names, str(path))
        table = parquet.read()
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise DataError(
            f"{path}: cannot read it as Parquet ({_short(exc)}); check the file"
        ) from None
    return table.to_pandas()


def check_unique_columns(names, where: str) -> None:
    seen, dupes = set(), []
    for name in names:
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        listed = ", ".join(repr(d) for d in dupes)
        raise DataError(f"{where}: duplicate column names {listed}; rename them so each is unique")


def as_frame(data, target: str | None = None, y=None) -> pd.DataFrame:
    """Accept a DataFrame, or a 2-D array (columns become ``x0, x1, ...``) with optional ``y``."""
    if isinstance(data, pd.DataFrame):
        check_unique_columns([str(c) for c in data.columns], "data frame")
        frame = data.rename(columns=str)
    elif _series(data):  # 3-D arrays and lists of series: trainforge.data.sequences
        from trainforge.data.sequences import sequence_frame

        frame = sequence_frame(data)
    else:
        array = np.asarray(data)
        if array.ndim != 2:
            raise DataError(f"data: expected a 2-D table, got an array of shape {array.shape}")
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    if y is not None:
        if target is None:
            raise DataError("data: y was given without a target name")
        if len(y) != len(frame):
            raise DataError(f"data: y has {len(y)} values but the table has {len(frame)} rows")
        frame = frame.assign(**{target: np.asarray(y)})
    if frame.empty:
        raise DataError("data: the table has no rows")
    return frame


def _series(data) -> bool:
    """A 3-D array, or a list of series (2-D arrays, or 1-D ones of different lengths)."""
    if isinstance(data, (list, tuple)):
        if not data or isinstance(data[0], (str, dict)) or np.ndim(data[0]) < 1:
            return False
        return np.ndim(data[0]) == 2 or len({len(item) for item in data}) > 1
    return np.ndim(data) == 3


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """A fingerprint of an in-memory frame's values, index and column names."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
