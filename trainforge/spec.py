"""The run spec: the single description of a run, and the only place its defaults live.

A ``RunSpec`` is what a YAML file, the CLI's flags and the Python API all turn into; the runner
takes nothing else. Model parameters are checked against the model registry while the spec is
built, so a typo fails before any data is read.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainforge.errors import SpecError


class Task(str, Enum):
    AUTO = "auto"
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"
    CLUSTERING = "clustering"
    REDUCTION = "reduction"
    IMAGE_CLASSIFICATION = "image_classification"
    TEXT_CLASSIFICATION = "text_classification"  # see trainforge.data.modality
    TEXT_REGRESSION = "text_regression"
    SEQUENCE_CLASSIFICATION = "sequence_classification"
    SEQUENCE_REGRESSION = "sequence_regression"
    GENERATION = "generation"  # see trainforge.generation


UNSUPERVISED = ("clustering", "reduction")  # tasks with no target (trainforge.unsupervised)
NO_TARGET = (*UNSUPERVISED, "generation")  # a generation run's target is optional


class Role(str, Enum):
    """How a column is used. ``ignore`` drops it."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    SEQUENCE = "sequence"
    IGNORE = "ignore"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class SplitSpec(_Strict):
    """How validation data is obtained when no validation file is given.

    ``holdout`` keeps ``validation_fraction`` of the rows aside (stratified for classification);
    ``cv`` scores each candidate by k-fold cross-validation and refits it on all rows.
    """

    strategy: Literal["holdout", "cv"] = "holdout"
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    folds: int = Field(5, ge=2, le=50)


class DataSpec(_Strict):
    """Where the data is and how to read it. ``sep`` and ``decimal`` override what is sniffed
    from a CSV (docs/data.md)."""

    train: Path | None = None
    validation: Path | None = None
    sep: str | None = Field(None, min_length=1, max_length=1)
    decimal: Literal[".", ","] | None = None
    target: str | None = None
    positive_class: str | None = None  # binary tasks: the class ROC AUC and F1 are about
    labels: str | None = None  # clustering/reduction only: for evaluation, never a feature
    columns: dict[str, Role] = Field(default_factory=dict)
    split: SplitSpec = Field(default_factory=SplitSpec)

    @model_validator(mode="after")
    def _check_split(self) -> DataSpec:
        if self.validation is not None and self.split.strategy == "cv":
            raise ValueError("give either a validation file or split.strategy 'cv', not both")
        if self.target is not None and self.target in self.columns:
            raise ValueError(f"columns.{self.target}: the target's role cannot be set")
        return self


class ImbalanceSpec(_Strict):
    """What classification runs do about class imbalance (docs/spec.md says when it is
    detected).

    ``auto`` weights classes when the classes are imbalanced and the primary metric does not
    score probabilities (class weights distort them), and tunes a binary task's decision
    threshold when imbalanced. Resampling is opt-in and touches training rows only.
    """

    class_weight: Literal["auto", "balanced", "none"] = "auto"
    threshold: Literal["auto", "tuned", "none"] = "auto"
    threshold_metric: Literal["f1", "balanced_accuracy", "mcc"] = "f1"
    resample: Literal["none", "smote", "under", "over"] = "none"


class ModelSpec(BaseModel):
    """One candidate: a family name plus that family's parameters, written flat.

    In YAML: ``{name: decision_tree, max_depth: 5}`` or just ``decision_tree``.
    """

    model_config = ConfigDict(extra="allow")

    name: str

    @model_validator(mode="before")
    @classmethod
    def _estimator_name(cls, data):
        """``{estimator: package.Class}`` is named after its class unless named."""
        if isinstance(data, dict) and "name" not in data and isinstance(data.get("estimator"), str):
            from trainforge.models.external import default_name

            return {"name": default_name(data["estimator"]), **data}
        return data

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class WandbSpec(_Strict):
    """Weights & Biases (docs/tracking.md): one W&B run per trainforge run. ``mode`` None is
    online when WANDB_API_KEY is set, else offline (``wandb sync`` uploads later)."""

    project: str = Field("trainforge", min_length=1, max_length=128)
    entity: str | None = None
    mode: Literal["offline", "online"] | None = None


class TensorBoardSpec(_Strict):
    """TensorBoard event files: under ``dir``/<run id>, or the run folder's ``tensorboard/``."""

    dir: Path | None = None


class TrackingSpec(_Strict):
    """Experiment tracking: MLflow on by default, W&B and TensorBoard when named.

    With no ``uri``, MLFLOW_TRACKING_URI is used when set, else an embedded SQLite store in the
    runs folder (``mlflow.db``, artifacts in ``mlartifacts/`` beside it). ``enabled: false``
    turns every tracker off; ``mlflow: false`` only MLflow.
    """

    enabled: bool = True
    mlflow: bool = True
    uri: str | None = None
    experiment: str = Field("trainforge", min_length=1, max_length=200)
    wandb: WandbSpec | None = None
    tensorboard: TensorBoardSpec | None = None

    @field_validator("wandb", "tensorboard", mode="before")
    @classmethod
    def _switch(cls, value):
        """``wandb: true`` is W&B with its defaults, ``false`` none."""
        if value is True:
            return {}
        return None if value is False else value


class ExecutionSpec(_Strict):
    """Where a run's candidates and search trials execute (docs/scale.md).

    ``local`` (the default) trains them one after another in this process and starts no Ray.
    ``ray`` makes each one a Ray task: ``address`` names a running cluster (``host:port``,
    ``auto`` for the one this machine belongs to, ``ray://...`` for Ray Client); without one
    RAY_ADDRESS is used when set, else a private Ray on this machine's loopback. ``workers``
    is how many run at once (default: the cluster's CPUs over ``cpus``); a search decides its
    trials in rounds of ``workers``, so a seed and a trial limit give the same trials on every
    backend with the same ``workers``. ``cpus`` and ``gpus`` are what each task asks for.
    ``data_parallel`` above 1 trains each neural net on that many Ray Train workers.
    """

    backend: Literal["local", "ray"] = "local"
    address: str | None = Field(None, min_length=1, max_length=500)
    workers: int | None = Field(None, ge=1, le=10_000)
    cpus: float = Field(1.0, gt=0, le=1024)
    gpus: float = Field(0.0, ge=0, le=64)
    data_parallel: int = Field(1, ge=1, le=1024)

    @model_validator(mode="after")
    def _ray_for_data_parallel(self) -> ExecutionSpec:
        if self.data_parallel > 1 and self.backend != "ray":
            raise SpecError(
                "execution.data_parallel: training one net on several workers needs "
                "backend: ray (--ray)"
            )
        return self


_UNITS = {"s": 1, "m": 60, "h": 3600}


def _metric_task(task: str) -> str | None:
    """The task whose metrics apply, or None while it is inferred from the data."""
    if task in ("auto", "image_classification", "text_classification"):
        return None if task == "auto" else "multiclass"
    if task == "sequence_classification":
        return "multiclass"
    if task in ("text_regression", "sequence_regression"):
        return "regression"
    return task


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"`` or ``"1.5h"``; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        unit = _UNITS.get(text[-1:]) if text else None
        try:
            seconds = float(text[:-1] if unit else text) * (unit or 1)
        except ValueError:
            raise ValueError(f"expected a duration such as 90s, 10m or 1h, got {value!r}") from None
    if not seconds > 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


class BudgetSpec(_Strict):
    """Bounds a run: a portfolio of proven settings first, then hyperparameter search.

    ``time`` (``90s``, ``10m``, ``1h`` or seconds) bounds the whole run; ``trials`` bounds the
    number of search trials (the same seed then gives the same trials). Either or both.
    """

    time: float | None = None
    trials: int | None = Field(None, ge=0)

    @field_validator("time", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _something(self) -> BudgetSpec:
        if self.time is None and self.trials is None:
            raise ValueError("give time (e.g. 10m), trials (e.g. 20), or both")
        return self


class RunSpec(_Strict):
    data: DataSpec
    task: Task = Task.AUTO
    models: list[ModelSpec] = Field(default_factory=list)
    metric: str = "auto"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    output: Path = Path("runs")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    imbalance: ImbalanceSpec = Field(default_factory=ImbalanceSpec)
    ensemble: bool = True
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    budget: BudgetSpec | None = None
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    export: Literal["onnx"] | None = None  # the best model as model.onnx (docs/export.md)

    @field_validator("models", mode="before")
    @classmethod
    def _names_as_entries(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return value  # checked with the task in _check_metric

    @model_validator(mode="after")
    def _check_metric(self) -> RunSpec:
        """An unknown metric is refused naming the metrics of the spec's task (all supervised
        ones while the task is still to be inferred) and the closest name."""
        from trainforge.errors import suggest
        from trainforge.metrics import METRICS

        if self.metric == "auto" or self.metric in METRICS:
            return self
        task = _metric_task(self.task.value)
        known = [n for n, m in METRICS.items() if task is None or task in m.tasks]
        if task is None:
            known = [n for n in known if set(METRICS[n].tasks) & {"binary", "regression"}]
        scope = "supervised metrics" if task is None else f"metrics of a {task} task"
        raise SpecError(
            f"metric: unknown metric {self.metric!r}{suggest(self.metric, known)}"
            f" ({scope}: {', '.join(sorted(known))})"
        )

    @model_validator(mode="after")
    def _check_target(self) -> RunSpec:
        """Supervised tasks need a target; clustering and reduction must not have one; for
        generation it is optional (a generated column the utility score predicts)."""
        task, data = self.task.value, self.data
        if task == "generation":
            return self
        if task in UNSUPERVISED and data.target is not None:
            raise SpecError(
                f"data.target: a {task} task has no target; remove it, or name the column "
                "data.labels to score the result against it (never used as a feature)"
            )
        if task not in UNSUPERVISED and data.target is None:
            raise SpecError("data.target: required setting is missing")
        if task not in UNSUPERVISED and data.labels is not None:
            raise SpecError(
                f"data.labels: only clustering and reduction tasks take labels; "
                f"for a {task} task name the column data.target"
            )
        return self

    @model_validator(mode="after")
    def _check_models(self) -> RunSpec:
        from trainforge.models.registry import check_model

        for index, model in enumerate(self.models):
            check_model(model.name, model.params, f"models[{index}]")
        return self

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: Any) -> RunSpec:
        """Validate a plain mapping, turning pydantic's errors into one readable line."""
        if not isinstance(raw, dict):
            raise SpecError(f"spec: expected a mapping of settings, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SpecError(_describe(exc)) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunSpec:
        return cls.from_dict(read_yaml(path))

    def resolved(self) -> RunSpec:
        """The same spec with its data files as absolute paths, so the spec.yaml a run keeps
        can be run again from any folder."""
        paths = {
            key: getattr(self.data, key).resolve()
            for key in ("train", "validation")
            if getattr(self.data, key) is not None
        }
        return self.model_copy(update={"data": self.data.model_copy(update=paths)})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)


# Flat settings (CLI flags, keyword arguments) and where they go in the spec.
_FLAT = {
    "train": ("data", "train"),
    "validation": ("data", "validation"),
    "sep": ("data", "sep"),
    "decimal": ("data", "decimal"),
    "target": ("data", "target"),
    "positive_class": ("data", "positive_class"),
    "labels": ("data", "labels"),
    "columns": ("data", "columns"),
    "split": ("data", "split", "strategy"),
    "folds": ("data", "split", "folds"),
    "validation_fraction": ("data", "split", "validation_fraction"),
    "tracking": ("tracking", "enabled"),
    "tracking_uri": ("tracking", "uri"),
    "experiment": ("tracking", "experiment"),
    "time_limit": ("budget", "time"),
    "trials": ("budget", "trials"),
    "workers": ("execution", "workers"),
    "data_parallel": ("execution", "data_parallel"),
}


def build_spec(source: RunSpec | dict | str | Path | None = None, **settings: Any) -> RunSpec:
    """The one way a RunSpec is made from a YAML file, a mapping, or flat settings.

    Flat settings (``target="y"``, ``models=["ridge"]``, ``folds=5``...) override the source.
    Relative data paths in a YAML file are read relative to that file.
    """
    if isinstance(source, RunSpec):
        raw = source.model_dump(mode="python", exclude_none=True)
    elif isinstance(source, (str, Path)):
        raw = read_yaml(source)
    else:
        raw = dict(source or {})
    ray = settings.pop("ray", None)
    if ray is not None and ray is not False:  # --ray [ADDRESS]: run on Ray (at ADDRESS)
        address = None if ray is True else ray
        given = settings.get("execution") or {}
        settings["execution"] = {
            **given,
            "backend": "ray",
            **({"address": address} if address else {}),
        }
    track = settings.pop("track", None)
    if track is not None:  # --track mlflow,wandb,tensorboard: these trackers and no others
        _track(raw.setdefault("tracking", {}), track)
    for key, value in settings.items():
        if value is None:
            continue
        path = _FLAT.get(key, (key,))
        if key in _SECTIONS and isinstance(value, dict):  # tracking={...}: the whole section
            path = (key,)
        node = raw
        for depth, part in enumerate(path[:-1], start=1):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"{'.'.join(path[:depth])}: expected a mapping of settings")
        if isinstance(value, dict) and isinstance(node.get(path[-1]), dict):
            value = {**node[path[-1]], **value}  # a section's settings override one by one
        node[path[-1]] = value
    if raw.get("task") in NO_TARGET:  # data from a frame alone: no data settings at all
        raw.setdefault("data", {})
    if "folds" in settings and settings["folds"] is not None:
        raw["data"]["split"]["strategy"] = "cv"
    _image_defaults(raw)
    return RunSpec.from_dict(raw)


TRACKERS = ("mlflow", "wandb", "tensorboard")
_SECTIONS = ("tracking",)  # flat settings that also take their whole section as a mapping


def _track(section: dict, track) -> None:
    """Turn the named trackers on (keeping their settings) and the others off."""
    if not isinstance(section, dict):
        raise SpecError("tracking: expected a mapping of settings")
    names = [n.strip() for n in track.split(",")] if isinstance(track, str) else list(track)
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise SpecError(f"track: unknown tracker {unknown[0]!r}; choose from {', '.join(TRACKERS)}")
    section["mlflow"] = "mlflow" in names
    for name in ("wandb", "tensorboard"):
        if name in names:
            section[name] = section.get(name) or {}
        else:
            section.pop(name, None)


def _image_defaults(raw: dict) -> None:
    """Images from a folder or npz file have their labels in ``label`` unless named, and a
    folder or npz file as training data means image classification."""
    from trainforge.data.images import is_image_source

    data = raw.get("data")
    if not isinstance(data, dict):
        return
    if raw.get("task", "auto") == "auto" and is_image_source(data.get("train")):
        raw["task"] = "image_classification"
    if raw.get("task") == "image_classification":
        data.setdefault("target", "label")


def read_yaml(path: str | Path) -> dict:
    """A YAML spec as a mapping, with relative data paths resolved against its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise SpecError(f"{path} is not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("train", "validation"):
            if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
                data[key] = str(path.parent / data[key])
    return raw


def _describe(exc: ValidationError) -> str:
    """The first pydantic error as ``path: problem, got value``."""
    error = exc.errors()[0]
    path = _format_loc(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown setting; remove it or check its spelling"
    if error["type"] == "missing":
        return f"{path}: required setting is missing"
    if "got" in message or "input" not in error:
        return f"{path}: {message}"
    return f"{path}: {message[0].lower()}{message[1:]}, got {error['input']!r}"


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "spec"
