"""Reading tables from files and turning arrays into frames, with errors a person can act on."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge.errors import DataError

# Cells that mean "missing" in the wild, besides pandas' own list.
MISSING_MARKERS = ["?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", ""]

_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(
    path: str | Path,
    sep: str | None = None,
    decimal: str | None = None,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV, TSV (either optionally gzipped) or Parquet file into a frame.

    A CSV's separator is sniffed (comma, semicolon, tab or bar) unless ``sep`` is given, and a
    semicolon-separated file whose numbers are written with decimal commas is read with
    ``decimal=","`` unless ``decimal`` is given; what was found is said in ``notes``.

    Raises:
        DataError: the file is missing, unreadable, empty, of an unknown kind, or has duplicate
            column names.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a table file (.csv, .tsv, .parquet or .npz)")
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
            frame = _read_text(path, kind, sep, decimal, gzipped, notes)
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


def _read_text(path: Path, kind: str, sep, decimal, gzipped: bool, notes) -> pd.DataFrame:
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        header = handle.readline()  # whole, however long: a 12,000-column header is fine
        sample = [handle.readline() for _ in range(SNIFF_LINES)]
    if not header.strip():
        raise DataError(f"{path}: the file is empty; give a table with a header row and data")
    header = header.rstrip("\r\n")
    sample = [line.rstrip("\r\n") for line in sample if line.strip()]
    if sep is None:
        sep = _TEXT_SUFFIXES[kind]
        if sep != "\t":  # .csv and .txt: sniffed
            sep = _sniff_separator(header, sample)
            if sep != "," and notes is not None:
                notes.append(f"{path.name}: read with {_SEP_NAMES[sep]} as the separator")
    if decimal is None:
        decimal = _sniff_decimal(sample, sep)
        if decimal == "," and notes is not None:
            notes.append(f"{path.name}: numbers read with decimal commas (1,5 = 1.5)")
    names = next(csv.reader(io.StringIO(header), delimiter=sep))
    check_unique_columns([h.strip() for h in names], str(path))
    return pd.read_csv(
        path,
        sep=sep,
        decimal=decimal,
        compression="gzip" if gzipped else None,
        na_values=MISSING_MARKERS,
        keep_default_na=True,
        skipinitialspace=True,
        encoding="utf-8-sig",
        low_memory=False,
    ).rename(columns=str.strip)


SNIFF_LINES = 20
_SEP_NAMES = {",": "',' (comma)", ";": "';' (semicolon)", "\t": "tab", "|": "'|' (bar)"}


def _sniff_separator(header: str, sample: list[str]) -> str:
    """The separator that splits the header and every sampled line into the same number of
    fields, the most fields winning; a comma for a single column."""
    best, fields = ",", 1
    for candidate in (",", ";", "\t", "|"):
        counts = {len(next(csv.reader([line], delimiter=candidate))) for line in [header, *sample]}
        if len(counts) == 1 and (n := counts.pop()) > fields:
            best, fields = candidate, n
    return best


_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
_DECIMAL_POINT = re.compile(r"^-?\d+\.\d+$")


def _sniff_decimal(sample: list[str], sep: str) -> str:
    """``,`` when sampled fields are numbers written with a decimal comma (and none with a
    point); only possible when the separator is not a comma."""
    if sep == ",":
        return "."
    cells = [cell.strip().strip('"') for line in sample for cell in line.split(sep)]
    comma = sum(bool(_DECIMAL_COMMA.match(cell)) for cell in cells)
    point = sum(bool(_DECIMAL_POINT.match(cell)) for cell in cells)
    return "," if comma and not point else "."


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
