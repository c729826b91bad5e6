"""Your own scikit-learn-compatible estimators as candidates (docs/models.md, "Your own models").

A spec entry ``{estimator: "sklearn.svm.NuSVC", nu: 0.3}`` (or, in Python, the estimator object)
joins the run as a family made for it: standardised numbers and one-hot categories before it
(what the linear models and SVMs get), its parameters checked against its class, its
probabilities used when it has ``predict_proba``. It is saved with skops like any pipeline;
types skops does not trust by default (a third-party package's classes) load only when the
loader trusts them: ``trainforge.load(path, trust=["package"])``, ``--trust package``. The run
that trained it trusts the packages its spec named, for its own saving and loading.
"""

from __future__ import annotations

import importlib
import inspect
import re

from trainforge.errors import SpecError
from trainforge.models.registry import Family, Prep

KEY = "estimator"  # the model entry's key naming the class
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
BUILDER = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")  # package.module:function


def estimator_family(path: str, where: str, name: str | None = None) -> Family:
    """A family named ``name`` (default: the class name in lower case) for the estimator class
    at ``path`` (``package.module.Class``).

    Raises:
        SpecError: not a dotted path, not importable, or not a scikit-learn estimator.
    """
    cls = import_estimator(path, where)
    kinds = {}
    if _is(cls, "classifier"):
        kinds["classification"] = path
    if _is(cls, "regressor"):
        kinds["regression"] = path
    if not kinds:
        raise SpecError(
            f"{where}.{KEY}: {path} is neither a classifier nor a regressor (scikit-learn's "
            "is_classifier / is_regressor); give a supervised estimator"
        )
    fit = inspect.signature(cls.fit).parameters
    return Family(
        name=name or default_name(path),
        summary=f"{path} (named in the spec)",
        classes=kinds,
        prep=Prep(scale=True),
        initial=lambda profile: {},
        initial_doc="its own defaults",
        probabilities=hasattr(cls, "predict_proba"),
        sample_weight="sample_weight" in fit,
        threaded="n_jobs" in inspect.signature(cls).parameters,
    )


def _is(cls: type, kind: str) -> bool:
    """scikit-learn's is_classifier / is_regressor, which take an instance: one made with the
    class's defaults, or the mixins when it has none."""
    from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier, is_regressor

    try:
        probe = cls()
    except Exception:  # noqa: BLE001 - a class with required arguments
        return issubclass(cls, ClassifierMixin if kind == "classifier" else RegressorMixin)
    return is_classifier(probe) if kind == "classifier" else is_regressor(probe)


def import_estimator(path: str, where: str) -> type:
    from sklearn.base import BaseEstimator

    if not isinstance(path, str) or not _DOTTED.match(path):
        raise SpecError(
            f"{where}.{KEY}: expected an import path like sklearn.svm.NuSVC, got {path!r}"
        )
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SpecError(
            f"{where}.{KEY}: cannot import {path} ({exc}); is its package installed?"
        ) from None
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator) and hasattr(cls, "fit")):
        raise SpecError(f"{where}.{KEY}: {path} is not a scikit-learn estimator class")
    return cls


def default_name(path: str) -> str:
    """The candidate's name: the class name in lower case (``NuSVC`` -> ``nusvc``)."""
    return path.rpartition(".")[2].lower()


def packages(models) -> list[str]:
    """The top-level packages of the estimators and torch builders a spec names: what its run
    trusts."""
    found = []
    for model in models:
        for path in (model.params.get(KEY), model.params.get("builder")):
            if isinstance(path, str) and _DOTTED.match(path.replace(":", ".")):
                top = path.split(".")[0].split(":")[0]
                if top not in found:
                    found.append(top)
    return found


def as_entry(estimator) -> dict:
    """A model entry for an estimator object given in Python: its class path and parameters.

    Raises:
        SpecError: a parameter a spec file cannot hold (an object, a function).
    """
    cls = type(estimator)
    entry = {KEY: f"{cls.__module__}.{cls.__qualname__}"}
    for key, value in estimator.get_params(deep=False).items():
        if value is not None and not isinstance(value, (bool, int, float, str, list, tuple, dict)):
            raise SpecError(
                f"models: {cls.__name__}'s parameter {key}={value!r} cannot be written to the "
                "run's spec.yaml; give plain values (numbers, strings, lists)"
            )
        entry[key] = list(value) if isinstance(value, tuple) else value
    return entry


def TorchModel(build, **settings) -> dict:  # noqa: N802 - used like a class
    """A model entry for your own torch module: ``build(n_inputs, n_outputs, **builder_args)``
    returns an ``nn.Module`` (trainforge.models.torch_module). ``settings``: ``builder_args``
    and the MLP's training settings (``max_epochs``, ``learning_rate``...).

    >>> trainforge.train(data=..., target="y", models=[trainforge.TorchModel(build=my_net)])
    """
    from trainforge.models.torch_module import builder_path

    try:
        path = builder_path(build)
    except Exception as exc:  # DataError: said as the spec error it is here
        raise SpecError(f"TorchModel: {exc}") from None
    return {"name": "torch_module", "builder": path, **settings}
