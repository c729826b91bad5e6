"""The model registry: family name -> how to build it, its initial settings, what it supports.

A family names the estimator classes its parameters belong to (one per task kind), so a spec's
parameters are checked against those classes' own declared constraints before any data is
read. Estimator classes are imported only when needed, which keeps ``trainforge --help`` fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from trainforge.errors import SpecError, suggest


@dataclass(frozen=True)
class Prep:
    """What a family needs from preprocessing.

    Attributes:
        scale: standardise numeric columns (linear models, SVMs, k-NN).
        categorical: ``onehot`` (with target encoding for many levels), ``ordinal`` (codes, fine
            for trees), or ``native`` (codes plus a mask the estimator uses natively; missing
            values are left as NaN for the estimator).
        vectorize: for text, ``tfidf`` turns the text column into TF-IDF features; None hands
            the texts to the estimator as they are (see trainforge.data.modality).
    """

    scale: bool
    categorical: str = "onehot"
    vectorize: str | None = None


@dataclass(frozen=True)
class Profile:
    """What initial settings may depend on: the shape of the training data."""

    task: str
    n_rows: int
    n_columns: int
    n_classes: int = 0
    seed: int = 0
    categorical_mask: tuple[bool, ...] | None = None
    image_shape: tuple[int, int, int] | None = None  # (height, width, channels) for images
    modality: str = "table"  # or text, sequence (trainforge.data.modality)
    channels: int = 1  # channels of sequence data
    device: str = "cpu"  # where the neural families train (trainforge.device)

    @property
    def input(self) -> str:
        """What the models read: ``image`` (a table of pixels), else the modality."""
        return "image" if self.image_shape is not None else self.modality


@dataclass(frozen=True)
class Substitution:
    """Use another family instead (e.g. linear SVM on large data), or skip, with a notice."""

    notice: str
    use: str | None = None


@dataclass(frozen=True)
class BudgetRules:
    """How a family takes part in a run with a budget (docs/search.md).

    Attributes:
        rank: where it trains among the default candidates the learned portfolio does not
            order (lower first).
        leave_out: left out of the default candidates under a budget: it rarely wins on
            tables, and its time is better spent tuning those that do.
        min_seconds: joins the default candidates only from time limits this long (loading
            torch and the first epochs take a good part of a shorter budget)...
        small_rows: ...except on tables of fewer training rows than this, where it joins at
            any limit and trains after the first ``small_slot`` entries of the portfolio
            (elsewhere it trains after the whole portfolio, by ``rank``).
        cost: predicted seconds of one fit on one thread, ``cost(profile)``, or None; a run
            scales it by how fast fits go on this machine (trainforge.search.budget).
    """

    rank: int = 100
    leave_out: bool = False
    min_seconds: float = 0.0
    small_rows: int = 0
    small_slot: int = 0
    cost: Callable[[Profile], float] | None = None

    def joins(self, limit: float | None, rows: int) -> bool:
        """Whether the family is among the default candidates of a run with time limit
        ``limit`` (None: no limit) on ``rows`` training rows."""
        if self.leave_out:
            return False
        return limit is None or limit >= self.min_seconds or rows < self.small_rows

    def slot(self, rows: int) -> int | None:
        """After how many portfolio entries it trains on ``rows`` rows (None: after all)."""
        return self.small_slot if rows < self.small_rows else None


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: what users write in a spec.
        summary: one line for the catalogue.
        classes: dotted estimator class per task kind (``classification``/``regression``);
            a spec's parameters are passed to, and checked against, that class. A key
            ``<input>:<kind>`` (``image:classification``) names the class for that input
            (``Profile.input``) where it differs (the ``net`` family's).
        prep: preprocessing needs.
        preps: preprocessing per input where it differs from ``prep``.
        initial: initial settings for a data profile (user parameters override them).
        initial_doc: those settings in words, for ``trainforge models`` and the docs.
        ladder: position in the default ladder (simplest first), or None if not in it.
        probabilities: gives class probabilities.
        sample_weight: ``fit`` accepts ``sample_weight``.
        wrap: optional wrapper applied after building for a task kind (e.g. calibration).
        substitute: optional rule replacing the family on some data when no parameters are set.
        requires: packages the family needs beyond the base install (e.g. ``torch``).
        space: its hyperparameter search space (a ``trainforge.search.space.Space``) for runs
            with a budget; None: it trains once with its initial settings.
        budget: how it takes part in a run with a budget.
        threaded: its estimator's ``n_jobs`` sets how many threads it uses (trainforge.threads
            decides the count per fit; other families are held to it through their thread
            pools).
        saves_itself: its estimator saves itself (``save_files`` / ``load_files``: JSON plus
            tensors or a native model file) instead of going through skops; only the classes of
            such families are ever rebuilt by trainforge.bundle.
        images_only: works on images only (CNN), so tables never get it.
        inputs: the data modalities it takes: ``table``, ``text``, ``sequence``.
        baseline: predicts without reading the features: the yardstick the watchdog compares
            others with, and never an ensemble member.
        fit_rows: fits on a seeded sample of at most this many rows of larger data (t-SNE).
        timed_predict: its time to predict new rows is measured (not for UMAP, whose first
            transform compiles numba code for minutes).
        required: parameters a spec must give it (``torch_module``'s ``builder``).
        check: ``check(params, path)`` raises SpecError for parameters its class cannot check
            alone (the ``net`` family's layers), naming ``path.param``.
    """

    name: str
    summary: str
    classes: dict[str, str]
    prep: Prep
    initial: Callable[[Profile], dict[str, Any]]
    initial_doc: str
    ladder: int | None = None
    probabilities: bool = True
    sample_weight: bool = True
    wrap: Callable[[str, Any], Any] | None = None
    substitute: Callable[[Profile], Substitution | None] | None = field(default=None)
    requires: tuple[str, ...] = ()
    space: Any = None
    budget: BudgetRules = BudgetRules()
    threaded: bool = False
    saves_itself: bool = False
    images_only: bool = False
    inputs: tuple[str, ...] = ("table",)
    baseline: bool = False
    fit_rows: int | None = None
    timed_predict: bool = True
    required: tuple[str, ...] = ()
    check: Callable[[dict[str, Any], str], None] | None = None
    preps: dict[str, Prep] = field(default_factory=dict)

    def available(self) -> bool:
        """Whether the packages this family needs are installed."""
        return all(importlib.util.find_spec(name) is not None for name in self.requires)

    def supports(self, task: str, images: bool = False) -> bool:
        return _kind(task) in self.classes and (images or not self.images_only)

    def estimator_class(self, task: str, input: str = "table") -> type:
        kind = _kind(task)
        return _import(self.classes.get(f"{input}:{kind}", self.classes[kind]))

    def prep_for(self, input: str) -> Prep:
        return self.preps.get(input, self.prep)

    def build(
        self,
        profile: Profile,
        params: dict[str, Any],
        threads: int | None = None,
    ) -> Any:
        """A fresh, unfitted estimator for this profile with the user's parameters on top
        (only those its class takes: ``device`` reaches only the estimators that have one).

        Args:
            threads: the estimator's ``n_jobs`` when it takes one and ``params`` does not set
                it (trainforge.threads decides it per fit).
        """
        cls = self.estimator_class(profile.task, profile.input)
        settings = {**self.initial(profile), **params}
        accepted = inspect.signature(cls).parameters
        if "random_state" in accepted:
            settings.setdefault("random_state", profile.seed)
        if threads is not None and self.threaded and "n_jobs" not in params:
            settings["n_jobs"] = threads
        estimator = cls(**{k: v for k, v in settings.items() if k in accepted})
        return self.wrap(_kind(profile.task), estimator) if self.wrap else estimator


def _kind(task: str) -> str:
    if task in ("clustering", "reduction", "generation"):
        return task
    return "regression" if task == "regression" else "classification"


def _import(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    FAMILIES[family.name] = family
    return family


def _load_catalogue() -> None:
    # Every time, not only while FAMILIES is empty: importing one family module directly (the
    # unsupervised runner imports clustering's helpers) must not hide the others.
    importlib.import_module("trainforge.models.classical")
    importlib.import_module("trainforge.models.boosting_families")
    importlib.import_module("trainforge.models.neural_families")
    importlib.import_module("trainforge.models.image_families")
    importlib.import_module("trainforge.models.sequence_families")
    importlib.import_module("trainforge.models.clustering")
    importlib.import_module("trainforge.models.reduction")
    importlib.import_module("trainforge.generation.families")


def get_family(name: str, path: str = "model") -> Family:
    _load_catalogue()
    try:
        return FAMILIES[name]
    except KeyError:
        hint = suggest(name, FAMILIES) or "; run `trainforge models` to see the catalogue"
        raise SpecError(f"{path}.name: unknown model {name!r}{hint}") from None


def families() -> list[Family]:
    _load_catalogue()
    return list(FAMILIES.values())


def is_baseline(name: str) -> bool:
    """Whether the family called ``name`` is a baseline (False for names of no family, such as
    the ensemble's)."""
    _load_catalogue()
    family = FAMILIES.get(name)
    return bool(family and family.baseline)


def self_saving_classes() -> set[str]:
    """Dotted names of the estimator classes that save themselves (see ``saves_itself``)."""
    return {dotted for f in families() if f.saves_itself for dotted in f.classes.values()}


# The start-simple ladder for images: a linear model on pixels, then an MLP, then a CNN.
IMAGE_LADDER = ("logistic_regression", "mlp", "cnn")


def ladder(task: str, modality: str = "table") -> list[Family]:
    """The default candidates for a task on data of a modality (``table``, ``text``,
    ``sequence``; ``image`` gives ``IMAGE_LADDER``), simplest first."""
    if modality == "image":
        return [get_family(name) for name in IMAGE_LADDER if get_family(name).supports(task, True)]
    chosen = [
        f for f in families() if f.ladder is not None and f.supports(task) and modality in f.inputs
    ]
    return sorted(chosen, key=lambda f: f.ladder)


def check_model(name: str, params: dict[str, Any], path: str) -> None:
    """Raise SpecError naming ``path.param`` if a parameter is unknown or of the wrong type."""
    from trainforge.models.external import KEY, estimator_family

    if KEY in params:  # the user's own estimator: its class is checked as a family's
        family = estimator_family(params[KEY], path, name)
        params = {k: v for k, v in params.items() if k != KEY}
    else:
        family = get_family(name, path)
    if not family.available():
        needs = " and ".join(family.requires)
        which = "which are" if len(family.requires) > 1 else "which is"
        raise SpecError(
            f"{path}.name: {name} needs {needs}, {which} not installed; "
            f'install it with pip install "trainforge[{family.requires[0]}]"'
        )
    missing = [key for key in family.required if key not in params]
    if missing:
        raise SpecError(f"{path}.{missing[0]}: {name} needs {missing[0]}; see `trainforge models`")
    classes = [_import(dotted) for dotted in family.classes.values()]
    known = sorted({p for cls in classes for p in inspect.signature(cls).parameters})
    for key, value in params.items():
        owners = [cls for cls in classes if key in inspect.signature(cls).parameters]
        if not owners:
            raise SpecError(
                f"{path}.{key}: unknown parameter for {name}{suggest(key, known)}"
                f" (known: {', '.join(known)})"
            )
        for cls in owners:
            _check_constraint(cls, key, value, path)
    if family.check is not None:
        family.check(params, path)


def _check_constraint(cls: type, key: str, value: Any, path: str) -> None:
    constraints = getattr(cls, "_parameter_constraints", {})
    if key not in constraints:
        return
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    try:
        validate_parameter_constraints({key: constraints[key]}, {key: value}, cls.__name__)
    except InvalidParameterError as exc:
        found = re.search(r"must be (.*)\. Got (.*) instead\.", str(exc), flags=re.S)
        detail = f"expected {found[1]}, got {found[2]}" if found else str(exc)
        raise SpecError(f"{path}.{key}: {detail}") from None
