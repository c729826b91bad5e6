"""What a model bundle must satisfy before anything in it is used.

Loading never executes code from a bundle (trainforge.bundle) and never reads outside it. These
checks close what a type check alone leaves open:

- every path a bundle names stays inside the bundle's folder: no absolute paths, no ``..``, no
  symbolic links anywhere in the folder;
- trees whose node arrays index one another (scikit-learn's ``Tree`` in decision trees and
  forests, histogram boosting's ``TreePredictor``) are checked before a prediction walks them:
  a child index out of range, a node pointing back up the tree or a feature the model does not
  have would crash the process or read memory outside the arrays (skops documents the risk);
- an optional signature (HMAC-SHA256 over every file's path and sha256, with a key the user
  holds) proves who wrote a bundle; the sha256 values in bundle.json only catch accidents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import numpy as np

from trainforge.errors import BundleError

SIGNATURE_FILE = "signature.json"
MAX_DEPTH = 12  # how deep the walk over a pipeline's objects goes looking for trees


def inside(folder: Path, name) -> Path:
    """``folder / name`` when ``name`` is a plain relative path that stays inside ``folder``;
    otherwise the bundle is refused."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BundleError(f"{folder}: a file entry {name!r} is not a file name; refusing it")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise BundleError(f"{folder}: {name!r} points outside the bundle; refusing it")
    return folder / relative


# Formats that run code when loaded (pickle and what wraps it, Keras' archives with their
# history of safe-mode bypasses): trainforge never writes them into a bundle, so one found there
# was planted, and the bundle is refused although nothing would read it.
CODE_FILES = (".pkl", ".pickle", ".joblib", ".keras", ".h5", ".hdf5", ".pt", ".pth", ".ckpt")


def no_links(folder: Path) -> None:
    """Refuse a bundle with a symbolic link anywhere in it (the folder itself included), or a
    file in a format that runs code when loaded (CODE_FILES)."""
    if folder.is_symlink():
        raise BundleError(f"{folder} is a symbolic link; refusing to load through it")
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            where = Path(root, name).relative_to(folder)
            if os.path.islink(os.path.join(root, name)):
                raise BundleError(f"{folder}: {where} is a symbolic link; refusing it")
            if name.lower().endswith(CODE_FILES):
                raise BundleError(
                    f"{folder}: {where} is a file format that can run code when loaded, which "
                    "trainforge never writes into a model; refusing the bundle"
                )


# -- trees ---------------------------------------------------------------------------------


def check_trees(model) -> None:
    """Check every tree in a loaded pipeline (see the module doc); refuse the bundle if one is
    malformed."""
    seen: set[int] = set()
    _walk(model, None, seen, 0)


def _walk(obj, n_features, seen: set[int], depth: int) -> None:
    if depth > MAX_DEPTH or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _walk(item, n_features, seen, depth + 1)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            _walk(item, n_features, seen, depth + 1)
        return
    module = type(obj).__module__
    if not (module.startswith("sklearn") or module.startswith("trainforge")):
        return
    kind = type(obj).__name__
    if kind == "Tree" and module.startswith("sklearn.tree"):
        _check_tree(obj, n_features)
        return
    if kind == "TreePredictor":
        _check_predictor(obj, n_features)
        return
    width = getattr(obj, "n_features_in_", None)
    width = width if isinstance(width, (int, np.integer)) else n_features
    state = getattr(obj, "__dict__", {})
    for item in state.values():
        _walk(item, width, seen, depth + 1)


def _check_tree(tree, n_features) -> None:
    """scikit-learn's Tree: each split node's children lie after it and inside the arrays, and
    split on a feature the model has; leaves have no children."""
    nodes = int(tree.node_count)
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    width = int(n_features if n_features is not None else tree.n_features)
    index = np.arange(nodes)
    split = left != -1
    good = (
        len(left) == len(right) == len(feature) == nodes
        and tree.value.shape[0] == nodes
        and np.array_equal(split, right != -1)
        and np.all(left[split] > index[split])
        and np.all(right[split] > index[split])
        and np.all(left[split] < nodes)
        and np.all(right[split] < nodes)
        and np.all(feature[split] >= 0)
        and np.all(feature[split] < width)
        and int(tree.n_features) <= width
    )
    if not good:
        raise BundleError("a decision tree in the model is malformed (node indices out of range)")


def _check_predictor(predictor, n_features) -> None:
    """Histogram boosting's TreePredictor: the same, plus categorical splits' bitset indices."""
    nodes = predictor.nodes
    count = len(nodes)
    index = np.arange(count)
    split = nodes["is_leaf"] == 0
    bitsets = len(predictor.binned_left_cat_bitsets)
    categorical = split & (nodes["is_categorical"] != 0)
    good = (
        count > 0
        and np.all(nodes["left"][split] > index[split])
        and np.all(nodes["right"][split] > index[split])
        and np.all(nodes["left"][split] < count)
        and np.all(nodes["right"][split] < count)
        and np.all(nodes["feature_idx"][split] >= 0)
        and (n_features is None or np.all(nodes["feature_idx"][split] < n_features))
        and np.all(nodes["bitset_idx"][categorical] < bitsets)
        and len(predictor.raw_left_cat_bitsets) == bitsets
    )
    if not good:
        raise BundleError("a boosted tree in the model is malformed (node indices out of range)")


# -- signatures --------------------------------------------------------------------------------


def sign(folder: Path, key: bytes) -> Path:
    """Write ``signature.json``: HMAC-SHA256 with ``key`` over every file of the bundle."""
    no_links(folder)
    digest = hmac.new(key, _listing(folder), hashlib.sha256).hexdigest()
    path = folder / SIGNATURE_FILE
    path.write_text(json.dumps({"algorithm": "hmac-sha256", "signature": digest}) + "\n")
    return path


def verify(folder: Path, key: bytes) -> None:
    """Refuse the bundle unless its signature matches ``key`` and its files as they are."""
    path = folder / SIGNATURE_FILE
    try:
        recorded = json.loads(path.read_text())["signature"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BundleError(
            f"{folder} is not signed (no valid {SIGNATURE_FILE}); sign it with trainforge sign"
        ) from None
    expected = hmac.new(key, _listing(folder), hashlib.sha256).hexdigest()
    if not isinstance(recorded, str) or not hmac.compare_digest(recorded, expected):
        raise BundleError(
            f"{folder}: the signature does not match this key and these files; the bundle was "
            "changed after it was signed, or signed with another key"
        )


def read_key(value) -> bytes:
    """A signing key: bytes as given, or the contents of a key file."""
    if isinstance(value, bytes):
        key = value
    else:
        try:
            key = Path(value).read_bytes().strip()
        except OSError as exc:
            raise BundleError(f"cannot read the key file {value}: {exc.strerror}") from None
    if len(key) < 16:
        raise BundleError("a signing key must be at least 16 bytes; use a long random key")
    return key


def _listing(folder: Path) -> bytes:
    """Every file's path (relative, sorted) and sha256, the signature file left out."""
    from trainforge.data.read import file_sha256

    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative != SIGNATURE_FILE:
            lines.append(f"{relative}\t{file_sha256(path)}")
    return "\n".join(lines).encode()
