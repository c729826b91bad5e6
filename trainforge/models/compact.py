"""Estimators saved as two files: their trees' arrays concatenated in one ``.npz`` (read with
``allow_pickle=False``) and the rest of the fitted estimator, its trees left out, through skops.

Through skops alone every tree is a JSON entry and arrays of its own, and models of thousands
of trees took longer to save and load than to fit. Histogram boosting (trainforge.models.hgb)
and forests (trainforge.models.forest) save this way; each class says which arrays it writes
and rebuilds its trees from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainforge.skops_import import skops_io

TREES_FILE = "trees.npz"
ESTIMATOR_FILE = "estimator.skops"


def write(folder: Path, rest, **arrays: np.ndarray) -> list[str]:
    """Write ``arrays`` to the trees file and ``rest`` (the estimator without its trees) through
    skops; the names of the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / TREES_FILE, **arrays)
    skops_io().dump(rest, folder / ESTIMATOR_FILE)
    return [ESTIMATOR_FILE, TREES_FILE]


def read(folder: Path, cls: type, trusted=()) -> tuple[object, dict[str, np.ndarray]]:
    """The estimator ``write`` saved, still without its trees, and the trees file's arrays. Its
    skops file may hold ``cls`` and the ``trusted`` types beyond what skops trusts by default,
    and must hold a ``cls``."""
    estimator = skops_io().load(folder / ESTIMATOR_FILE, trusted=[*trusted, dotted(cls)])
    if type(estimator) is not cls:
        raise TypeError(f"{folder / ESTIMATOR_FILE} holds a {type(estimator).__name__}")
    with np.load(folder / TREES_FILE, allow_pickle=False) as saved:
        return estimator, {key: saved[key] for key in saved.files}


def dotted(cls: type) -> str:
    """A class's full name, as bundles record it and skops trusts it."""
    return f"{cls.__module__}.{cls.__qualname__}"
