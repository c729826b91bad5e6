"""Reading images: npz arrays, folders with one sub-folder per class, CSVs of pixel columns.

Every source becomes a table of pixel columns plus the label column, so the run's splits,
preprocessing, leaderboard, bundles and ``predict`` work on images unchanged. Pixel columns are
named ``pixel_<row>_<col>`` (``pixel_<row>_<col>_<channel>`` with several channels), which
records the image shape in the table itself; image models read it back with ``image_shape``.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_PIXEL = re.compile(r"^pixel_(\d+)_(\d+)(?:_(\d+))?$")
_KEYS = {
    "train": (("x_train", "y_train"), ("x", "y"), ("X", "y"), ("images", "labels")),
    "validation": (("x_test", "y_test"), ("x_valid", "y_valid"), ("x_val", "y_val")),
}


# A 3-D array (N, A, B) is N grayscale images of A x B pixels when B is wider than this, and N
# series of A steps x B channels otherwise. A task (image_classification, sequence_...) decides.
SERIES_CHANNELS = 4


def is_image_source(path, task: str | None = None) -> bool:
    """Whether ``path`` names images (a folder, or an ``.npz`` whose array holds images)."""
    if path is None or task in _NOT_IMAGES:
        return False
    path = Path(path)
    if path.is_dir():
        return True
    if path.suffix.lower() != ".npz":
        return False
    if task == "image_classification":
        return True
    shape = _npz_shape(path)  # read once, from the array's header
    return shape is None or _images(shape)


def is_image_array(value, task: str | None = None) -> bool:
    """Whether an array holds images: ``(N, H, W, C)``, or ``(N, H, W)`` wider than
    SERIES_CHANNELS (narrower ones are series), unless ``task`` says which."""
    if not isinstance(value, np.ndarray) or value.ndim not in (3, 4) or task in _NOT_IMAGES:
        return False
    return task == "image_classification" or _images(value.shape)


_NOT_IMAGES = {
    "sequence_classification",
    "sequence_regression",
    "text_classification",
    "text_regression",
}


def _images(shape: tuple[int, ...]) -> bool:
    return len(shape) == 4 or (len(shape) == 3 and shape[2] > SERIES_CHANNELS)


def _npz_shape(path: Path) -> tuple[int, ...] | None:
    """The shape of the training array in an npz file, read from its header alone."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            for images, _ in _KEYS["train"]:
                if f"{images}.npy" in names:
                    with archive.open(f"{images}.npy") as handle:
                        major, _ = np.lib.format.read_magic(handle)
                        read = (
                            np.lib.format.read_array_header_1_0
                            if major == 1
                            else np.lib.format.read_array_header_2_0
                        )
                        return read(handle)[0]
    except (OSError, ValueError, zipfile.BadZipFile):
        return None  # the reader says what is wrong with the file
    return None


def read_images(path, target: str, role: str = "train") -> pd.DataFrame:
    """The images at ``path`` as a pixel table with the labels in column ``target``.

    Raises:
        DataError: a missing path, empty class folder, corrupt image, images of mixed sizes,
            or an npz file without image and label arrays.
    """
    path = Path(path)
    if path.is_dir():
        images, labels = _read_folder(path)
    elif path.suffix.lower() == ".npz":
        images, labels = _read_npz(path, role)
    elif path.is_file():
        return _read_pixel_csv(path, target)
    else:
        raise DataError(f"{path}: no such file or folder; check the path")
    return images_frame(images, labels, target)


def images_frame(images, labels=None, target: str = "label") -> pd.DataFrame:
    """An array ``(N, H, W[, C])`` (and labels) as a table of named pixel columns."""
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise DataError(f"images: expected an array (N, H, W) or (N, H, W, C), got {images.shape}")
    if len(images) == 0:
        raise DataError("images: the array holds no images")
    if images.dtype.kind not in "uif" and images.dtype != bool:
        raise DataError(f"images: pixel values must be numbers, got dtype {images.dtype}")
    index = np.indices(images.shape[1:]).reshape(images.ndim - 1, -1).T
    names = ["pixel_" + "_".join(map(str, position)) for position in index]
    frame = pd.DataFrame(images.reshape(len(images), -1), columns=names)
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != len(images):
            raise DataError(f"{len(images)} images but {len(labels)} labels; give one label each")
        frame[target] = labels
    return frame


def image_shape_of(columns) -> tuple[int, int, int] | None:
    """``(height, width, channels)`` recorded in ``pixel_<row>_<col>[_<channel>]`` names."""
    columns = list(columns)
    found = _PIXEL.match(str(columns[-1])) if columns else None
    if found is None or not all(_PIXEL.match(str(c)) for c in columns):
        return None
    shape = (int(found[1]) + 1, int(found[2]) + 1, int(found[3] or 0) + 1)
    return shape if shape[0] * shape[1] * shape[2] == len(columns) else None


def pixel_roles(frame: pd.DataFrame, target: str) -> dict[str, str]:
    """Every column but the target is a numeric pixel (none dropped as constant, none
    categorical), so the image keeps its shape through the table's schema."""
    return {str(c): "numeric" for c in frame.columns if c != target}


def image_task(frame: pd.DataFrame, target: str) -> str:
    if target not in frame.columns:
        raise DataError(f"images: no label column {target!r}; name it with --target")
    return "binary" if frame[target].nunique(dropna=True) == 2 else "multiclass"


def _read_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise DataError(
            f'{folder}: reading image files needs Pillow; pip install "trainforge[images]"'
        ) from None
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"{folder}: no class folders; put each class's images in a sub-folder named after it"
        )
    images, labels, first = [], [], None
    for label in classes:
        files = sorted(
            p for p in label.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"{label}: class folder {label.name!r} has no PNG or JPEG images; add some or "
                "remove the folder"
            )
        for file in files:
            picture = _open(file)
            if first is None:
                first = (file, picture.shape)
            elif picture.shape != first[1]:
                raise DataError(
                    f"images of mixed sizes: {file} is {_size(picture.shape)} but {first[0]} is "
                    f"{_size(first[1])}; resize them all to one size"
                )
            images.append(picture)
            labels.append(label.name)
    return np.stack(images), np.asarray(labels)


def _open(file: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as picture:
            picture.load()
            mode = "L" if picture.mode in ("1", "L", "P", "I;16", "I", "F", "LA") else "RGB"
            if picture.mode == "P" and "transparency" not in picture.info:
                mode = "RGB"
            return np.asarray(picture.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "unreadable"
        raise DataError(
            f"{file}: not a readable image ({reason}); replace or delete the file"
        ) from None


def _size(shape) -> str:
    channels = shape[2] if len(shape) == 3 else 1
    return f"{shape[1]}x{shape[0]} with {channels} channel(s)"


def _read_npz(path: Path, role: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            for images, labels in _KEYS.get(role, ()) + _KEYS["train"]:
                if images in arrays.files and labels in arrays.files:
                    return arrays[images], arrays[labels]
            found = ", ".join(arrays.files) or "none"
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as npz ({exc}); check the file") from None
    raise DataError(
        f"{path}: no image and label arrays (looked for x_train/y_train, x/y, images/labels; "
        f"found {found}); rename the arrays"
    )


def is_pixel_csv(path) -> bool:
    """Whether ``path`` is a CSV (or .csv.gz) of numbers only, without a header row: pixel
    values with the label last, as MNIST's CSVs come."""
    path = Path(path)
    if not path.is_file() or not path.name.lower().endswith((".csv", ".csv.gz")):
        return False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            header = handle.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False  # the reader says what is wrong with the file
    return len(header) > 1 and all(_is_number(cell) for cell in header)


def _read_pixel_csv(path: Path, target: str) -> pd.DataFrame:
    """A CSV of pixel columns with the label last, with or without a header row."""
    from trainforge.data.read import read_table

    if not is_pixel_csv(path):
        return read_table(path)
    frame = pd.read_csv(path, header=None)
    columns = [f"x{i}" for i in range(frame.shape[1] - 1)]
    shape = _square(len(columns))
    if shape is not None:
        columns = list(images_frame(np.zeros((1, *shape))).columns)
    frame.columns = [*columns, target]
    return frame


def _square(n: int) -> tuple[int, int] | None:
    side = int(round(n**0.5))
    return (side, side) if side * side == n else None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def image_tables(spec, train: pd.DataFrame | None, validation: pd.DataFrame | None):
    """The pixel tables, task and column roles of an image run.

    Args:
        spec: the run's DataSpec; its ``train``/``validation`` paths are read when no frame
            is given.

    Returns:
        ``(train, validation, task, roles)``: the task is ``binary`` or ``multiclass`` (image
        labels are classes even when they are integers), and every pixel column is numeric.
    """
    if train is None:
        if spec.train is None:
            raise DataError("data.train: no images given; name a folder, an npz or a CSV file")
        train = read_images(spec.train, spec.target, "train")
    if validation is None and spec.validation is not None:
        validation = read_images(spec.validation, spec.target, "validation")
    return train, validation, image_task(train, spec.target), pixel_roles(train, spec.target)
