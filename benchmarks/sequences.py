"""Sequence and text families against the issue's targets, with each family's initial settings.

    python benchmarks/sequences.py                       # every dataset, rnn and transformer
    python benchmarks/sequences.py gunpoint:transformer  # chosen dataset:family pairs

ItalyPowerDemand and GunPoint: the archive's own train/test split. SMS spam: a stratified 30%
holdout (seed 0), training on the other 70%. Each model is built the way a run builds it
(the family's initial settings for the data's size) with seed 0 and trained on one torch
thread (on a shared 2-core machine two threads wait for each other). Prints one JSON line per
model: test accuracy, training seconds, epochs and the early-stopping epoch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import machine_line

from trainforge.models.registry import Profile, get_family

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGETS = {"italypowerdemand": 0.95, "gunpoint": 0.95, "sms_spam": 0.97}
DEFAULT = [f"{d}:{f}" for d in TARGETS for f in ("rnn", "transformer")]


def load(name: str):
    """(X_train, y_train, X_test, y_test, modality)."""
    if name == "sms_spam":
        from sklearn.model_selection import train_test_split

        frame = pd.read_csv(DATA / "text" / "sms_spam.tsv", sep="\t")
        train, test = train_test_split(
            frame, test_size=0.3, stratify=frame["label"], random_state=0
        )
        texts = [part["message"].to_numpy(dtype=object) for part in (train, test)]
        return texts[0], train["label"].to_numpy(), texts[1], test["label"].to_numpy(), "text"
    data = np.load(DATA / "sequences" / f"{name}.npz")
    return data["x_train"], data["y_train"], data["x_test"], data["y_test"], "sequence"


def measure(name: str, family_name: str) -> dict:
    X, y, X_test, y_test, modality = load(name)
    channels = 1 if modality == "text" else X.shape[2]
    task = "binary" if len(set(y)) == 2 else "multiclass"
    profile = Profile(task, len(X), 1, len(set(y)), 0, modality=modality, channels=channels)
    model = get_family(family_name).build(profile, {})
    started = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - started
    accuracy = float((model.predict(X_test) == y_test).mean())
    return {
        "dataset": name,
        "family": family_name,
        "test_accuracy": round(accuracy, 4),
        "target": TARGETS[name],
        "met": accuracy >= TARGETS[name],
        "train_seconds": round(seconds, 1),
        "epochs": model.n_epochs_,
        "best_epoch": model.best_epoch_,
        "train_rows": len(X),
        "test_rows": len(X_test),
    }


def main(pairs: list[str]) -> None:
    torch.set_num_threads(1)
    print(machine_line(), flush=True)
    for pair in pairs:
        name, family_name = pair.split(":")
        print(json.dumps(measure(name, family_name)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
