"""What every torch estimator shares: its training settings, stated once.

The MLP, CNN, RNN, Transformer, InceptionTime, your own torch module and the ``net`` family all
train on one loop (trainforge.models.neural._MLPBase) with the same settings. scikit-learn
reads an estimator's parameters from the signature of its ``__init__``, so each estimator used
to spell out all of them again; ``estimator_init`` writes that ``__init__`` from the estimator's
own parameters (its network and inputs) and its defaults for the training settings:

    class CNNClassifier(ClassifierMixin, _MLPBase):
        __init__ = estimator_init({"channels": (16, 32), ...}, learning_rate=3e-3)

The ``__init__`` only stores what it is given (scikit-learn's rule); ``fit`` checks values
against ``_parameter_constraints``, which take ``TRAINING_CONSTRAINTS`` for these settings.
"""

from __future__ import annotations

import inspect
from numbers import Integral, Real
from typing import Any, Callable

from sklearn.utils._param_validation import Interval, StrOptions

from trainforge.training.loop import PRECISIONS
from trainforge.training.losses import LOSSES
from trainforge.training.optim import OPTIMIZERS
from trainforge.training.schedules import SCHEDULES

# The settings of the training loop and their defaults (the MLP's; estimators change some).
TRAINING: dict[str, Any] = {
    "optimizer": "adamw",
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "l1": 0.0,
    "batch_size": 256,
    "max_epochs": 200,
    "patience": 10,
    "validation_fraction": 0.1,
    "schedule": "plateau",
    "loss": "auto",
    "grad_clip": None,
    "checkpoint_every_steps": 0,
    "random_state": None,
    "device": "cpu",
    "deterministic": True,
    "precision": "32",
    "compile": False,
    "cuda_graph": True,
}

TRAINING_CONSTRAINTS: dict[str, list] = {
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "l1": [Interval(Real, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "patience": [Interval(Integral, 1, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "schedule": [StrOptions(set(SCHEDULES)), None],
    "loss": [StrOptions({"auto", *LOSSES})],
    "grad_clip": [Interval(Real, 0, None, closed="neither"), None],
    "checkpoint_every_steps": [Interval(Integral, 0, None, closed="left")],
    "random_state": ["random_state"],
    "device": [str],
    "deterministic": ["boolean"],
    "precision": [StrOptions(set(PRECISIONS))],
    "compile": ["boolean"],
    "cuda_graph": ["boolean"],
}


def estimator_init(own: dict[str, Any], **training: Any) -> Callable:
    """An ``__init__`` taking ``own`` parameters (name: default), then every training setting
    with ``training``'s defaults over ``TRAINING``'s; all keyword arguments, all stored as
    given. Its signature is explicit, so ``get_params``, ``clone`` and ``help`` see them.

    Raises:
        TypeError: ``training`` names a setting the loop does not have.
    """
    unknown = sorted(set(training) - set(TRAINING))
    if unknown:
        raise TypeError(f"not a training setting: {', '.join(unknown)}")
    defaults = {**own, **TRAINING, **training}

    def __init__(self, **params):
        unexpected = sorted(set(params) - set(defaults))
        if unexpected:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument {unexpected[0]!r}"
            )
        for name, default in defaults.items():
            setattr(self, name, params.get(name, default))

    keyword = inspect.Parameter.KEYWORD_ONLY
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, keyword, default=value) for name, value in defaults.items()]
    )
    return __init__
