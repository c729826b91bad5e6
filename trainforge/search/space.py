"""Search spaces: a small declarative description of what a family's search may change.

A space lists parameters with their ranges (``Float``, ``Int``, ``Choice``) and settings every
trial uses (``fixed``); a family declares it on its registration (``Family.space``). Spaces are
data, so docs/search.md is generated from them (scripts/search_doc.py) and the documentation
cannot drift from the code. The settings tried before any sampled ones come from the learned
portfolio (trainforge.search.portfolio).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Param:
    """One searchable parameter.

    Attributes:
        name: the estimator parameter it sets.
        low, high: the range of a number (both ends included).
        log: sample on a log scale (for rates and penalties spanning decades).
        integer: whole numbers only.
        choices: labels of a categorical parameter (what the search library sees).
        values: the estimator values behind ``choices`` where a label is not the value itself
            (e.g. ``"256-128"`` for the layer sizes ``(256, 128)``); None: labels are values.
        tasks: ``classification`` or ``regression`` when the parameter exists for one only.
    """

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()
    values: tuple | None = None
    tasks: str | None = None

    def suggest(self, trial) -> Any:
        """Draw this parameter from an Optuna trial; returns the estimator's value."""
        if self.choices:
            label = trial.suggest_categorical(self.name, list(self.choices))
            return self.values[self.choices.index(label)] if self.values else label
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        """The range in words, for the docs."""
        if self.choices:
            return "one of " + ", ".join(f"`{c}`" for c in self.choices)
        kind = "integer" if self.integer else "number"
        scale = ", log scale" if self.log else ""
        return f"{kind} in [{_num(self.low)}, {_num(self.high)}]{scale}"


def Float(name: str, low: float, high: float, log: bool = False, tasks: str | None = None):
    return Param(name, low, high, log=log, tasks=tasks)


def Int(name: str, low: int, high: int, log: bool = False, tasks: str | None = None):
    return Param(name, low, high, log=log, integer=True, tasks=tasks)


def Choice(name: str, choices: list | dict, tasks: str | None = None) -> Param:
    """A categorical parameter; a dict maps labels to values that are not plain scalars."""
    if isinstance(choices, dict):
        return Param(name, choices=tuple(choices), values=tuple(choices.values()), tasks=tasks)
    return Param(name, choices=tuple(choices), tasks=tasks)


@dataclass(frozen=True)
class Space:
    """What a search may change in one family.

    Attributes:
        params: the searchable parameters.
        fixed: settings every trial uses on top of the family's initial ones (e.g. more
            boosting rounds, since a search also tries small learning rates).
        hooks: for families that can be stopped mid-fit: ``hooks(report, at, stopped)``
            returns the estimator's extra ``callbacks``, which report each epoch's (or boosting
            round's) validation value through ``report(step, value) -> stop?`` (None: no
            pruning), stop at the ``time.monotonic()`` value ``at``, and stop when
            ``stopped()`` (optional) says another fold of the trial was pruned. None: the fit
            cannot be stopped, so the search starts it only when its predicted time fits.
        prunes: the search passes ``hooks`` a ``report`` and prunes by it; only for steps that
            compare trials fairly (epochs of the training loop: at a given boosting round a
            small learning rate always trails a large one, so boosting fits are not pruned).
        note: one line for the docs (where the settings come from, what is left out).
    """

    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    hooks: Callable[[Callable[[int, float], bool] | None, float], list] | None = None
    prunes: bool = False
    note: str = ""

    def for_task(self, task: str, taken: set[str] = frozenset()) -> list[Param]:
        """The parameters a search draws for ``task``, leaving out those the user set."""
        kind = "regression" if task == "regression" else "classification"
        return [p for p in self.params if p.tasks in (None, kind) and p.name not in taken]

    def sample(self, trial, task: str, taken: set[str] = frozenset()) -> dict[str, Any]:
        """Estimator settings for one trial: ``fixed`` plus a value for each parameter."""
        drawn = {p.name: p.suggest(trial) for p in self.for_task(task, taken)}
        return {**self.fixed, **drawn}

    def encode(self, settings: dict[str, Any], task: str) -> dict[str, Any] | None:
        """A trial's parameters (labels) for estimator ``settings``, or None when a setting
        the space draws is missing or outside its range (such settings cannot seed a study)."""
        labels = {}
        for param in self.for_task(task):
            if param.name not in settings:
                return None
            value = settings[param.name]
            if param.choices:
                values = param.values or param.choices
                matches = [i for i, v in enumerate(values) if _same(v, value)]
                if not matches:
                    return None
                labels[param.name] = param.choices[matches[0]]
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            elif not param.low <= value <= param.high:
                return None
            else:
                labels[param.name] = int(value) if param.integer else float(value)
        return labels

    def distributions(self, task: str) -> dict:
        """Optuna's distributions of the parameters drawn for ``task``."""
        import optuna

        found = {}
        for p in self.for_task(task):
            if p.choices:
                found[p.name] = optuna.distributions.CategoricalDistribution(list(p.choices))
            elif p.integer:
                found[p.name] = optuna.distributions.IntDistribution(
                    int(p.low), int(p.high), log=p.log
                )
            else:
                found[p.name] = optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
        return found

    def decode(self, labels: dict[str, Any]) -> dict[str, Any]:
        """Estimator settings from a trial's recorded parameters (labels to values)."""
        by_name = {p.name: p for p in self.params}
        decoded = {}
        for name, label in labels.items():
            param = by_name.get(name)
            if param is not None and param.values:
                label = param.values[param.choices.index(label)]
            decoded[name] = label
        return decoded


def _same(a, b) -> bool:
    """Equal values of the same kind (``1`` is not ``1.0`` or ``True``; lists match tuples)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return type(a) is type(b) and a == b


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e5:
        return str(int(value))
    return f"{value:g}"
