"""Learning-rate schedules by name, and their exact save and restore through JSON.

A schedule is a torch scheduler plus the moment the training loop must call its ``step()``:

- ``"step"``: after every optimizer step (``cosine``, ``onecycle``);
- ``"epoch"``: after every epoch (``step``, ``multistep``, ``exponential``);
- ``"plateau"``: after every epoch, with the monitored value (``plateau``).

Names, their parameters and defaults:

- ``None`` or ``"constant"``: no schedule (``build_schedule`` returns None).
- ``step``: multiply the lr by ``gamma=0.1`` every ``step_size=10`` epochs.
- ``multistep``: multiply the lr by ``gamma=0.1`` at each epoch in ``milestones=[30, 60]``.
- ``exponential``: multiply the lr by ``gamma=0.95`` every epoch.
- ``cosine``: linear warmup from 0 over the first ``warmup_fraction=0.05`` of all steps to the
  base lr, then cosine decay to ``min_lr_ratio=0.0`` times the base lr at the last step.
- ``onecycle``: torch's one-cycle policy over ``steps_per_epoch * max_epochs`` steps, rising
  from ``max_lr / div_factor`` to ``max_lr`` (default: the optimizer's lr) over the first
  ``pct_start=0.3`` of them, then annealing to ``max_lr / (div_factor * final_div_factor)``;
  ``div_factor=25``, ``final_div_factor=1e4``. With ``cycle_momentum=True`` it also cycles
  momentum (beta1 for Adam) between 0.85 and 0.95, overriding the optimizer's own.
- ``plateau``: multiply the lr by ``factor=0.5`` when the monitored value has not improved for
  more than ``patience=5`` epochs in a row (torch's rule: with ``patience=2`` the third bad
  epoch reduces); ``mode="min"``, ``threshold=1e-4`` (relative), ``cooldown=0``,
  ``min_lr=0.0``.

Per-step schedules need ``steps_per_epoch`` to be the exact number of optimizer steps per
epoch: ``onecycle`` refuses to step past its total.

Checkpoints store ``schedule_state(schedule)`` as JSON and restore it with
``load_schedule_state`` into a freshly built schedule; the learning rates that follow are then
bit-identical to an uninterrupted run, even before the optimizer's own state is restored.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Union

import torch
from torch.optim import lr_scheduler

from trainforge.errors import SpecError, suggest

Scheduler = Union[lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau]

SCHEDULES = ("constant", "step", "multistep", "exponential", "cosine", "onecycle", "plateau")

PARAMETERS: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"step_size": 10, "gamma": 0.1},
    "multistep": {"milestones": [30, 60], "gamma": 0.1},
    "exponential": {"gamma": 0.95},
    "cosine": {"warmup_fraction": 0.05, "min_lr_ratio": 0.0},
    "onecycle": {
        "max_lr": None,
        "pct_start": 0.3,
        "div_factor": 25.0,
        "final_div_factor": 1e4,
        "cycle_momentum": True,
    },
    "plateau": {
        "factor": 0.5,
        "patience": 5,
        "mode": "min",
        "threshold": 1e-4,
        "cooldown": 0,
        "min_lr": 0.0,
    },
}

# Optimizer settings that schedulers write into the parameter groups.
_SCHEDULED_KEYS = (
    "lr",
    "initial_lr",
    "max_lr",
    "min_lr",
    "momentum",
    "betas",
    "max_momentum",
    "base_momentum",
)


@dataclass
class Schedule:
    """A torch scheduler and when the training loop calls its ``step()``.

    Attributes:
        scheduler: the torch scheduler, bound to the optimizer it was built for.
        interval: ``"step"`` after each optimizer step, ``"epoch"`` after each epoch,
            ``"plateau"`` after each epoch with the monitored value (``step(value)``).
    """

    scheduler: Scheduler
    interval: Literal["step", "epoch", "plateau"]


def build_schedule(
    name: str | None,
    optimizer: torch.optim.Optimizer,
    *,
    steps_per_epoch: int,
    max_epochs: int,
    **params: Any,
) -> Schedule | None:
    """Build a learning-rate schedule by name (see the module docstring for names and defaults).

    Args:
        name: one of ``SCHEDULES``, or None for a constant learning rate.
        optimizer: the optimizer whose learning rate is scheduled.
        steps_per_epoch: optimizer steps per epoch (per-step schedules only).
        max_epochs: epochs in the run (per-step schedules only).
        **params: the schedule's parameters; unset ones take their defaults.

    Returns:
        The schedule, or None for a constant learning rate.

    Raises:
        SpecError: unknown name or parameter, or a parameter value the schedule cannot take.
    """
    name = "constant" if name is None else name
    if name not in PARAMETERS:
        known = ", ".join(SCHEDULES)
        raise SpecError(f"unknown schedule {name!r}{suggest(name, SCHEDULES)} (known: {known})")
    for key in params:
        if key not in PARAMETERS[name]:
            known = ", ".join(PARAMETERS[name]) or "none"
            raise SpecError(
                f"schedule {name!r}: unknown parameter {key!r}"
                f"{suggest(key, PARAMETERS[name])} (known: {known})"
            )
    if name == "constant":
        return None
    total_steps = _total_steps(steps_per_epoch, max_epochs)
    settings = {**PARAMETERS[name], **params}
    try:
        return _BUILDERS[name](optimizer, total_steps, settings)
    except (ValueError, TypeError) as error:
        raise SpecError(f"schedule {name!r}: {error}") from None


def warmup_cosine_factor(
    step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """The ``cosine`` schedule's lr as a fraction of the base lr at an optimizer step.

    Linear from 0 at step 0 to 1 at ``warmup_steps``, then half a cosine down to
    ``min_lr_ratio`` at ``total_steps``, and flat after that.
    """
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return min_lr_ratio
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - min_lr_ratio)


def schedule_state(schedule: Schedule) -> dict[str, Any]:
    """The schedule's state as plain JSON values (``inf`` needs ``allow_nan``, the default).

    Holds the scheduler's ``state_dict()`` and the learning rates and momenta it wrote into
    the optimizer's parameter groups, so a restore does not depend on the optimizer's state.
    """
    state = copy.deepcopy(schedule.scheduler.state_dict())
    if isinstance(state.get("milestones"), Counter):
        state["milestones"] = sorted(state["milestones"].elements())
    groups = [
        {key: _plain(group[key]) for key in _SCHEDULED_KEYS if key in group}
        for group in schedule.scheduler.optimizer.param_groups
    ]
    return {"scheduler": state, "param_groups": groups}


def load_schedule_state(schedule: Schedule, state: dict[str, Any]) -> None:
    """Restore ``schedule_state`` output, as read back from JSON, into a freshly built schedule.

    Raises:
        SpecError: the state was saved for a different number of parameter groups.
    """
    scheduler = schedule.scheduler
    groups = scheduler.optimizer.param_groups
    if len(state["param_groups"]) != len(groups):
        raise SpecError(
            f"the saved schedule has {len(state['param_groups'])} parameter groups but the "
            f"optimizer has {len(groups)}; resume with the same model and optimizer"
        )
    saved = copy.deepcopy(state["scheduler"])
    if isinstance(scheduler, lr_scheduler.MultiStepLR):
        saved["milestones"] = Counter(saved["milestones"])
    scheduler.load_state_dict(saved)
    for group, values in zip(groups, state["param_groups"]):
        for key, value in values.items():
            group[key] = tuple(value) if key == "betas" else value


def _build_step(optimizer, total_steps: int, settings: dict) -> Schedule:
    scheduler = lr_scheduler.StepLR(
        optimizer, step_size=_positive_int(settings, "step_size"), gamma=settings["gamma"]
    )
    return Schedule(scheduler, "epoch")


def _build_multistep(optimizer, total_steps: int, settings: dict) -> Schedule:
    milestones = [int(m) for m in settings["milestones"]]
    if milestones != sorted(set(milestones)) or any(m < 1 for m in milestones):
        raise ValueError(f"milestones must be increasing positive epochs, got {milestones}")
    scheduler = lr_scheduler.MultiStepLR(optimizer, milestones, gamma=settings["gamma"])
    return Schedule(scheduler, "epoch")


def _build_exponential(optimizer, total_steps: int, settings: dict) -> Schedule:
    return Schedule(lr_scheduler.ExponentialLR(optimizer, gamma=settings["gamma"]), "epoch")


def _build_cosine(optimizer, total_steps: int, settings: dict) -> Schedule:
    fraction, min_ratio = settings["warmup_fraction"], settings["min_lr_ratio"]
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {fraction}")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_ratio}")
    # A partial of a module-level function keeps the scheduler's state plain data: LambdaLR
    # saves only the (empty) attributes of the callable, and a rebuild supplies the function.
    factor = functools.partial(
        warmup_cosine_factor,
        warmup_steps=int(fraction * total_steps),
        total_steps=total_steps,
        min_lr_ratio=float(min_ratio),
    )
    return Schedule(lr_scheduler.LambdaLR(optimizer, factor), "step")


def _build_onecycle(optimizer, total_steps: int, settings: dict) -> Schedule:
    max_lr = settings["max_lr"]
    if max_lr is None:
        max_lr = [group["lr"] for group in optimizer.param_groups]
    scheduler = lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total_steps,
        pct_start=settings["pct_start"],
        div_factor=settings["div_factor"],
        final_div_factor=settings["final_div_factor"],
        cycle_momentum=settings["cycle_momentum"],
    )
    return Schedule(scheduler, "step")


def _build_plateau(optimizer, total_steps: int, settings: dict) -> Schedule:
    scheduler = lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=settings["mode"],
        factor=settings["factor"],
        patience=settings["patience"],
        threshold=settings["threshold"],
        cooldown=settings["cooldown"],
        min_lr=settings["min_lr"],
    )
    return Schedule(scheduler, "plateau")


_BUILDERS = {
    "step": _build_step,
    "multistep": _build_multistep,
    "exponential": _build_exponential,
    "cosine": _build_cosine,
    "onecycle": _build_onecycle,
    "plateau": _build_plateau,
}


def _total_steps(steps_per_epoch: int, max_epochs: int) -> int:
    for label, value in (("steps_per_epoch", steps_per_epoch), ("max_epochs", max_epochs)):
        if not _is_whole(value) or value < 1:
            raise SpecError(f"{label} must be a positive whole number, got {value!r}")
    return int(steps_per_epoch) * int(max_epochs)


def _positive_int(settings: dict, key: str) -> int:
    value = settings[key]
    if not _is_whole(value) or value < 1:
        raise ValueError(f"{key} must be a positive whole number, got {value!r}")
    return int(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """A parameter-group setting as a JSON value: betas become a list."""
    return list(value) if isinstance(value, tuple) else value
