"""The Optuna side of a search: the studies' SQLite storage, their seeded samplers, and what a
trial's record keeps (trainforge.search.tuner)."""

from __future__ import annotations

import inspect
import math
import warnings
import zlib

STARTUP_TRIALS = 5


def sampler(seed: int, name: str, turns: int):
    """A TPE sampler seeded from the run's seed, the study and its trials so far, so a run with
    the same seed draws the same trials, also after a kill and resume."""
    import optuna

    value = (seed * 1_000_003 + zlib.crc32(name.encode()) + turns) % 2**32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=value, n_startup_trials=STARTUP_TRIALS, multivariate=True
        )


def trial_record(study: str, number: int, params: dict, value, state: str) -> dict:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return {
        "study": study,
        "number": number,
        "params": dict(params),
        "value": None if missing else value,
        "state": state,
    }


def estimator_defaults(family, task: str) -> dict:
    """The estimator's own defaults, under the family's initial settings."""
    parameters = inspect.signature(family.estimator_class(task)).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def failed_state():
    import optuna

    return optuna.trial.TrialState.FAIL


def storage(path):
    """Optuna's SQLite storage in WAL mode with normal syncing: a killed process loses nothing
    committed, and each trial costs a few fsyncs instead of dozens."""
    import optuna
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")

    def pragmas(connection, record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened from now on get the pragmas
    return storage
