"""The search history in the run folder: every trial (``search.csv``) and which parameters
mattered (``search_importance.json``), for reports and plots of score over time."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from trainforge.atomic import write_json, write_text

COLUMNS = [
    "study",
    "number",
    "candidate",
    "state",
    "value",
    "params",
    "started_seconds",
    "finished_seconds",
    "datetime_start",
    "datetime_complete",
    "resumed",
]


def history_frame(storage) -> pd.DataFrame:
    """One row per trial of every study, in the order they started.

    ``value`` is the trial's validation score (also for pruned trials); ``started_seconds`` and
    ``finished_seconds`` count budget time from the run's start, across resumed attempts.
    ``resumed`` marks a trial a kill interrupted and a resumed run continued.
    """
    import optuna

    rows = []
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        for trial in study.get_trials(deepcopy=False):
            attrs = trial.user_attrs
            if trial.state.name == "WAITING" or attrs.get("seeded"):
                continue  # not tried yet, or a portfolio candidate the study starts from
            state = trial.state.name
            rows.append(
                {
                    "study": name,
                    "number": trial.number,
                    "candidate": attrs.get("candidate"),
                    "state": state,
                    "value": attrs.get("score"),
                    "params": json.dumps(trial.params, sort_keys=True),
                    "started_seconds": attrs.get("started_seconds"),
                    "finished_seconds": attrs.get("finished_seconds"),
                    "datetime_start": _iso(trial.datetime_start),
                    "datetime_complete": _iso(trial.datetime_complete),
                    "resumed": bool(attrs.get("resumed", False)),
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["started_seconds", "study", "number"], na_position="last")


def write_history(folder: Path, storage) -> None:
    write_text(folder / "search.csv", history_frame(storage).to_csv(index=False))


def write_importance(folder: Path, storage, seed: int) -> dict:
    """fANOVA importance of each searched parameter, per study with enough finished trials."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    found = {}
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,), deepcopy=False)
        if len(complete) < 3:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = get_param_importances(
                    study, evaluator=FanovaImportanceEvaluator(seed=seed)
                )
        except (ValueError, RuntimeError):  # e.g. every trial drew the same values
            continue
        found[name] = {k: round(float(v), 4) for k, v in scores.items()}
    write_json(folder / "search_importance.json", found)
    return found


def _iso(moment) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None
