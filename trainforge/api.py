"""The Python API: ``trainforge.train`` and ``trainforge.load``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainforge.bundle import load_bundle
from trainforge.data.images import images_frame, is_image_array
from trainforge.data.read import as_frame
from trainforge.errors import RunError
from trainforge.events import RunObserver
from trainforge.model import Model
from trainforge.run import RunResult, execute
from trainforge.rundir import MANIFEST, read_manifest
from trainforge.spec import RunSpec, build_spec


def train(
    spec: RunSpec | dict | str | Path | None = None,
    data: Any = None,
    *,
    y: Any = None,
    validation: Any = None,
    observer: RunObserver | None = None,
    **settings: Any,
) -> RunResult:
    """Train and compare candidates; returns the leaderboard, the best model and the run folder.

    Args:
        spec: a RunSpec, a mapping, or a YAML file path; optional when settings say enough.
        data: training data: a file path, a DataFrame, or a 2-D array (then pass ``y``);
            images as an array (N, H, W[, C]) with ``y``, an npz file or a class folder.
        y: target values when ``data`` is an array or a frame without the target.
        validation: validation data (file path or DataFrame) instead of a split.
        observer: receives progress events (see trainforge.events).
        **settings: flat spec settings that override ``spec``: target, labels, task, models,
            metric, seed, output, name, columns, folds, validation_fraction, ensemble,
            imbalance (a mapping), tracking (False: no MLflow), tracking_uri, experiment,
            time_limit, trials.

    Example:
        >>> result = trainforge.train(data="adult.csv", target="income >50K", models=["ridge"])
    """
    started = time.monotonic()  # a time budget counts from here
    frames: dict[str, Any] = {"train": None, "validation": None}
    if y is not None and settings.get("target") is None:
        settings["target"] = "target"
    for role, value in (("train", data), ("validation", validation)):
        if isinstance(value, (str, Path)):
            settings[role] = value
        elif is_image_array(value, settings.get("task")):  # (N, H, W[, C]) images: a pixel table
            target = settings.setdefault("target", "label")
            settings.setdefault("task", "image_classification")
            frames[role] = images_frame(value, y if role == "train" else None, target)
        elif value is not None:
            frames[role] = as_frame(value, settings.get("target"), y if role == "train" else None)
    spec = build_spec(spec, **settings)
    return execute(spec, frames["train"], frames["validation"], observer, started)


def load(path: str | Path) -> Model:
    """Load a saved model: a bundle folder, or a run folder (its best candidate)."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path)
        best = (manifest.get("best") or {}).get("candidate")
        if manifest.get("status") != "completed" or best is None:
            raise RunError(f"run {path.name} is {manifest.get('status')}; it has no best model")
        path = path / "candidates" / best / "model"
    return load_bundle(path)
