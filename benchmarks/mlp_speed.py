"""Benchmark: MLP training speed, trainforge vs a plain PyTorch loop, skorch and Lightning.

The reference is the classic tutorial loop written plainly: an MLP 128-64 with dropout 0.3/0.2,
Adam (lr 1e-3), batches of 32 from a shuffled DataLoader, cross-entropy, validation loss and
accuracy every epoch, ``torch.save`` of the weights whenever the validation loss improves,
early stopping with patience 5, and the best weights restored at the end. The same network and
settings run in trainforge's MLPClassifier, skorch's NeuralNetClassifier and a PyTorch
Lightning module, and trainforge also runs at its own defaults.

Two measurements, in one process so their ratios are comparable:

1. Throughput at equal hyperparameters: training rows per second of fit wall time, every
   framework capped at the same number of epochs (validation and checkpoint saves included),
   repeated with the frameworks in rotating order; medians are reported.
2. Time to accuracy: the plain loop runs to early stopping once; its best validation accuracy
   is the target. trainforge at its defaults then trains until its validation accuracy first
   reaches the target; the ratio is the plain loop's time to the target over trainforge's.

Every framework trains on the same rows and validates on the same rows (a seeded stratified
80/20 split). trainforge draws its validation rows inside ``fit``; the benchmark hands it the
training rows followed by the validation rows and replaces its private splitting function for
the duration of the fit so that it holds out exactly those validation rows (nothing in
``trainforge/`` is changed).

Needs skorch and lightning (skipped with a note when missing); see benchmarks/README.md for the
environment. Usage:

    benchmarks/.venv-speed/bin/python benchmarks/mlp_speed.py --write
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from common import machine_line, versions
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular" / "adult.csv"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## MLP training speed: trainforge vs a plain PyTorch loop, skorch and Lightning"
TARGET = "income >50K"
SEED = 0

# The tutorial's hyperparameters, shared by every framework at "equal hyperparameters".
HIDDEN = (128, 64)
DROPOUT = (0.3, 0.2)
LEARNING_RATE = 1e-3
BATCH = 32
PATIENCE = 5

FRAMEWORKS = ("plain", "trainforge", "skorch", "lightning")
LABELS = {
    "plain": "plain PyTorch loop",
    "trainforge": "trainforge MLPClassifier",
    "skorch": "skorch NeuralNetClassifier",
    "lightning": "PyTorch Lightning",
}
AIMS = {"plain": 1.5, "skorch": 1.0, "lightning": 1.0}  # trainforge throughput / theirs
AIM_DEFAULTS = 5.0  # plain loop's time to its best accuracy / trainforge defaults' time


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages (other work on the shared cores)."""
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


LOAD_AT_START = load_average()


# -- data ------------------------------------------------------------------------------------


@dataclass
class Data:
    """Float32 features and int64 labels, already split into training and validation rows."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray

    @property
    def shape(self) -> str:
        rows = len(self.X_train) + len(self.X_valid)
        return f"{rows:,} rows x {self.X_train.shape[1]} features"


def split(name: str, X: np.ndarray, y: np.ndarray, fit_transform=None) -> Data:
    """A seeded stratified 80/20 split; ``fit_transform(train_idx, valid_idx)`` makes features.

    Args:
        name: the dataset's name in the report.
        X: the raw table (a DataFrame when ``fit_transform`` is given, else a float array).
        y: integer class labels.
        fit_transform: fits preprocessing on the training rows and returns both feature arrays.
    """
    from sklearn.model_selection import train_test_split

    train, valid = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=SEED)
    if fit_transform is None:
        X_train, X_valid = X[train], X[valid]
    else:
        X_train, X_valid = fit_transform(train, valid)
    return Data(
        name,
        np.ascontiguousarray(X_train, dtype=np.float32),
        y[train].astype(np.int64),
        np.ascontiguousarray(X_valid, dtype=np.float32),
        y[valid].astype(np.int64),
    )


def load_adult(path: Path) -> Data:
    """adult.csv: numbers median-imputed and standardised, categories one-hot encoded."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(path, na_values=["?"])
    y = frame.pop(TARGET).to_numpy()
    numeric = frame.select_dtypes("number").columns.tolist()
    categorical = [c for c in frame.columns if c not in numeric]
    features = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ],
        sparse_threshold=0.0,
    )

    def fit_transform(train, valid):
        return features.fit_transform(frame.iloc[train]), features.transform(frame.iloc[valid])

    return split("adult", frame, np.unique(y, return_inverse=True)[1], fit_transform)


def make_synthetic(rows: int = 200_000, columns: int = 50) -> Data:
    """A seeded nonlinear binary task: several Gaussian clusters per class on hypercube corners."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=rows,
        n_features=columns,
        n_informative=20,
        n_redundant=10,
        n_clusters_per_class=4,
        flip_y=0.02,
        random_state=SEED,
    )
    return split("synthetic", X.astype(np.float32), y)


# -- what every framework returns -------------------------------------------------------------


@dataclass
class Run:
    """One fit: how many epochs it ran, its wall time, and a per-epoch timeline.

    Attributes:
        epochs: epochs trained.
        seconds: wall time of the whole fit, from its first line to the best weights restored.
        timeline: per epoch, ``val_accuracy`` and ``seconds`` since the fit started (the
            epoch's validation and checkpoint save included), where the runner records it.
    """

    epochs: int
    seconds: float
    timeline: list[dict] = field(default_factory=list)


def tutorial_net(n_features: int) -> nn.Sequential:
    """The tutorial's network: 128-64 ReLU with dropout 0.3 and 0.2, two logits."""
    return nn.Sequential(
        nn.Linear(n_features, HIDDEN[0]),
        nn.ReLU(),
        nn.Dropout(DROPOUT[0]),
        nn.Linear(HIDDEN[0], HIDDEN[1]),
        nn.ReLU(),
        nn.Dropout(DROPOUT[1]),
        nn.Linear(HIDDEN[1], 2),
    )


# -- the plain loop ---------------------------------------------------------------------------


def run_plain(data: Data, max_epochs: int, folder: Path) -> Run:
    """The classic tutorial loop, written plainly.

    Args:
        data: the split dataset.
        max_epochs: the most epochs to train (early stopping may end sooner).
        folder: where the best weights are saved.
    """
    from torch.utils.data import DataLoader, TensorDataset

    start = time.perf_counter()
    torch.manual_seed(SEED)
    train_set = TensorDataset(torch.from_numpy(data.X_train), torch.from_numpy(data.y_train))
    valid_set = TensorDataset(torch.from_numpy(data.X_valid), torch.from_numpy(data.y_valid))
    train_loader = DataLoader(train_set, batch_size=BATCH, shuffle=True)
    valid_loader = DataLoader(valid_set, batch_size=BATCH)
    model = tutorial_net(data.X_train.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    criterion = nn.CrossEntropyLoss()
    best_path = folder / "best_model.pt"
    best_loss, wait, timeline = float("inf"), 0, []
    for epoch in range(max_epochs):
        model.train()
        running_loss = 0.0
        for inputs, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(inputs)
        model.eval()
        val_loss, correct = 0.0, 0
        with torch.no_grad():
            for inputs, labels in valid_loader:
                outputs = model(inputs)
                val_loss += criterion(outputs, labels).item() * len(inputs)
                correct += (outputs.argmax(dim=1) == labels).sum().item()
        val_loss /= len(valid_set)
        if val_loss < best_loss:
            best_loss, wait = val_loss, 0
            torch.save(model.state_dict(), best_path)
        else:
            wait += 1
        timeline.append(
            {
                "epoch": epoch + 1,
                "val_loss": val_loss,
                "val_accuracy": correct / len(valid_set),
                "seconds": time.perf_counter() - start,
            }
        )
        if wait >= PATIENCE:
            break
    model.load_state_dict(torch.load(best_path))
    return Run(len(timeline), time.perf_counter() - start, timeline)


# -- trainforge --------------------------------------------------------------------------------


def trainforge_classes():
    """Timing callbacks for trainforge's loop (passed to ``fit`` with ``callbacks=``)."""
    from trainforge.training.callbacks.base import Callback

    class EpochTimer(Callback):
        """Records the time since ``start`` at each epoch's end (after the checkpoint save);
        stops training once ``stop_when(logs, seconds)`` says so."""

        name = "epoch_timer"

        def __init__(self, start: float, stop_when: Callable[[dict, float], bool] | None):
            self.start, self.stop_when, self.timeline = start, stop_when, []

        def on_epoch_end(self, loop, logs: dict) -> None:
            seconds = time.perf_counter() - self.start
            self.timeline.append({**logs, "seconds": seconds})
            if self.stop_when is not None and self.stop_when(logs, seconds):
                loop.stop = True

    class StepTimer(Callback):
        """Splits every step of trainforge's own loop into ``STEP_PARTS`` and sums their seconds.

        The marks come from hooks on the loop's objects: a forward pre-hook on the model, a
        forward hook on the loss module, a wrapped ``optimizer.zero_grad``, the optimizer's step
        post-hook, and this callback's ``after_backward`` and ``on_batch_end`` (it runs last).
        """

        name = "step_timer"

        def __init__(self):
            self.parts = dict.fromkeys(STEP_PARTS, 0.0)
            self.steps = 0
            self.optimizer = ""
            self.marks: dict[str, float] = {}

        def on_train_begin(self, loop) -> None:
            clock, marks = time.perf_counter, self.marks

            def mark(name: str):
                return lambda *args, **kwargs: marks.__setitem__(name, clock())

            loop.model.register_forward_pre_hook(mark("forward"))
            loop.loss_fn.register_forward_hook(mark("loss"))
            loop.optimizer.register_step_post_hook(mark("stepped"))
            zero_grad = loop.optimizer.zero_grad

            def timed_zero_grad(*args, **kwargs):
                marks["zero_grad"] = clock()
                zero_grad(*args, **kwargs)
                marks["zeroed"] = clock()

            loop.optimizer.zero_grad = timed_zero_grad
            options = loop.optimizer.defaults
            kind = "fused" if options.get("fused") else "foreach" if options.get("foreach") else ""
            self.optimizer = " ".join(filter(None, [type(loop.optimizer).__name__, kind]))

        def on_epoch_begin(self, loop) -> None:
            self.marks["end"] = time.perf_counter()

        def after_backward(self, loop) -> None:
            self.marks["backward"] = time.perf_counter()

        def on_batch_end(self, loop) -> None:
            now, marks = time.perf_counter(), self.marks
            spans = (
                (marks["end"], marks["forward"]),
                (marks["forward"], marks["loss"]),
                (marks["zero_grad"], marks["zeroed"]),
                (marks["zeroed"], marks["backward"]),
                (marks["backward"], marks["stepped"]),
                (marks["stepped"], now),
            )
            for part, (begin, end) in zip(STEP_PARTS, spans):
                self.parts[part] += end - begin
            marks["end"] = now
            self.steps += 1

    return EpochTimer, StepTimer


@contextlib.contextmanager
def validation_rows(n_train: int, n_valid: int):
    """Make trainforge's MLP hold out the last ``n_valid`` of the rows it is given.

    trainforge draws its validation rows with ``trainforge.models.neural._split``; while this
    context is open that function returns the benchmark's split instead (rows are passed as
    training rows then validation rows).
    """
    import trainforge.models.neural as neural

    original = neural._split

    def fixed(n_rows: int, fraction: float, seed: int):
        if n_rows != n_train + n_valid:
            raise RuntimeError(f"expected {n_train + n_valid} rows, got {n_rows}")
        return np.arange(n_train), np.arange(n_train, n_rows)

    neural._split = fixed
    try:
        yield
    finally:
        neural._split = original


@contextlib.contextmanager
def timers_last(timers: list):
    """Run ``timers`` after every other callback of trainforge's MLP, checkpointing included
    (``fit(callbacks=...)`` would put them before the checkpoint write, so epoch times would
    leave its fsync out). Nothing in ``trainforge/`` is changed."""
    import trainforge.models.neural as neural

    original = neural.runtime_callbacks

    def with_timers(*args, **kwargs):
        return [*original(*args, **kwargs), *timers]

    neural.runtime_callbacks = with_timers
    try:
        yield
    finally:
        neural.runtime_callbacks = original


def run_trainforge(
    data: Data,
    params: dict,
    stop_when: Callable[[dict, float], bool] | None = None,
    step_timer=None,
    checkpoint_dir: Path | None = None,
) -> Run:
    """trainforge's MLPClassifier with ``params``, trained on the benchmark's split.

    Args:
        data: the split dataset.
        params: MLPClassifier parameters.
        stop_when: called at each epoch's end with the logs and the seconds so far; True stops
            the fit there (used to stop once a target accuracy is reached).
        step_timer: a StepTimer from ``trainforge_classes`` to add to the loop's callbacks.
    """
    from trainforge.models.neural import MLPClassifier

    EpochTimer, _ = trainforge_classes()
    X = np.concatenate([data.X_train, data.X_valid])
    y = np.concatenate([data.y_train, data.y_valid])
    estimator = MLPClassifier(**params)
    with validation_rows(len(data.X_train), len(data.X_valid)):
        start = time.perf_counter()
        timer = EpochTimer(start, stop_when)
        timers = [timer] if step_timer is None else [step_timer, timer]
        with timers_last(timers):
            estimator.fit(X, y, checkpoint_dir=checkpoint_dir)
        seconds = time.perf_counter() - start
    return Run(estimator.n_epochs_, seconds, timer.timeline)


def trainforge_equal(max_epochs: int) -> dict:
    """MLPClassifier parameters matching the tutorial."""
    return {
        "hidden_sizes": HIDDEN,
        "activation": "relu",
        "dropout": DROPOUT,
        "optimizer": "adam",
        "learning_rate": LEARNING_RATE,
        "weight_decay": 0.0,
        "batch_size": BATCH,
        "max_epochs": max_epochs,
        "patience": PATIENCE,
        "schedule": None,
        "random_state": SEED,
    }


# -- skorch ------------------------------------------------------------------------------------


def run_skorch(data: Data, max_epochs: int, folder: Path) -> Run:
    """skorch's NeuralNetClassifier with the tutorial's network and settings."""
    from skorch import NeuralNetClassifier
    from skorch.callbacks import Callback, Checkpoint, EarlyStopping
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    class EpochCounter(Callback):
        """Counts epochs (``Checkpoint(load_best=True)`` reloads the best epoch's history)."""

        epochs = 0

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    counter = EpochCounter()
    start = time.perf_counter()
    torch.manual_seed(SEED)
    net = NeuralNetClassifier(
        tutorial_net(data.X_train.shape[1]),
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=LEARNING_RATE,
        batch_size=BATCH,
        max_epochs=max_epochs,
        iterator_train__shuffle=True,
        train_split=predefined_split(Dataset(data.X_valid, data.y_valid)),
        callbacks=[
            EarlyStopping(monitor="valid_loss", patience=PATIENCE, threshold=0.0),
            Checkpoint(monitor="valid_loss_best", dirname=str(folder), load_best=True),
            counter,
        ],
        verbose=0,
    )
    net.fit(data.X_train, data.y_train)
    return Run(counter.epochs, time.perf_counter() - start)


# -- Lightning ---------------------------------------------------------------------------------


def lightning_module():
    """The LightningModule class (defined lazily, so the script runs without Lightning)."""
    import lightning as L

    class TutorialModule(L.LightningModule):
        """The tutorial network, Adam and cross-entropy, as a LightningModule."""

        def __init__(self, n_features: int):
            super().__init__()
            self.net = tutorial_net(n_features)
            self.criterion = nn.CrossEntropyLoss()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            inputs, labels = batch
            loss = self.criterion(self(inputs), labels)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            inputs, labels = batch
            outputs = self(inputs)
            self.log("val_loss", self.criterion(outputs, labels))
            self.log("val_accuracy", (outputs.argmax(dim=1) == labels).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=LEARNING_RATE)

    return TutorialModule


def run_lightning(data: Data, max_epochs: int, folder: Path) -> Run:
    """A Lightning Trainer with early stopping and a best-model checkpoint."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    start = time.perf_counter()
    torch.manual_seed(SEED)
    train_set = TensorDataset(torch.from_numpy(data.X_train), torch.from_numpy(data.y_train))
    valid_set = TensorDataset(torch.from_numpy(data.X_valid), torch.from_numpy(data.y_valid))
    module = lightning_module()(data.X_train.shape[1])
    checkpoint = ModelCheckpoint(dirpath=folder, monitor="val_loss", save_top_k=1)
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        callbacks=[EarlyStopping(monitor="val_loss", patience=PATIENCE), checkpoint],
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    trainer.fit(
        module,
        DataLoader(train_set, batch_size=BATCH, shuffle=True),
        DataLoader(valid_set, batch_size=BATCH),
    )
    epochs = trainer.current_epoch
    best = torch.load(checkpoint.best_model_path, weights_only=True)
    module.load_state_dict(best["state_dict"])
    return Run(epochs, time.perf_counter() - start)


# -- the measurements --------------------------------------------------------------------------


def available(frameworks: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """The frameworks that can run here, and a note for each one that cannot."""
    missing = {"skorch": "skorch", "lightning": "lightning"}
    ok, notes = [], []
    for name in frameworks:
        module = missing.get(name)
        if module and find_spec(module) is None:
            notes.append(f"{LABELS[name]} skipped: `{module}` is not installed here.")
        else:
            ok.append(name)
    return tuple(ok), notes


def train(name: str, data: Data, max_epochs: int) -> Run:
    """One fit of ``name`` at the tutorial's hyperparameters, saving into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix=f"mlp-speed-{name}-") as folder:
        folder = Path(folder)
        if name == "plain":
            return run_plain(data, max_epochs, folder)
        if name == "trainforge":
            return run_trainforge(data, trainforge_equal(max_epochs), checkpoint_dir=folder)
        if name == "skorch":
            return run_skorch(data, max_epochs, folder)
        return run_lightning(data, max_epochs, folder)


def warm_up(frameworks: tuple[str, ...], data: Data) -> None:
    """One untimed epoch of each framework on a few rows: lazy imports and first-call costs."""
    rows = slice(0, 512)
    small = Data(
        data.name, data.X_train[rows], data.y_train[rows], data.X_valid[rows], data.y_valid[rows]
    )
    for name in frameworks:
        train(name, small, 1)


def throughput(frameworks: tuple[str, ...], data: Data, epochs: int, repeats: int) -> dict:
    """Fits of every framework capped at ``epochs``, in rotating order, ``repeats`` times.

    Returns:
        framework -> list of Runs.
    """
    runs: dict[str, list[Run]] = {name: [] for name in frameworks}
    for repeat in range(repeats):
        shift = repeat % len(frameworks)
        for name in frameworks[shift:] + frameworks[:shift]:
            run = train(name, data, epochs)
            if run.epochs != epochs:
                raise RuntimeError(f"{name} ran {run.epochs} epochs, not {epochs}")
            runs[name].append(run)
            rate = epochs * len(data.X_train) / run.seconds
            print(f"  {data.name} {name}: {run.seconds:.2f} s, {rate:,.0f} rows/s", file=sys.stderr)
    return runs


@dataclass
class ToTarget:
    """The time-to-accuracy runs on one dataset.

    Attributes:
        plain: the plain loop run to early stopping (or its epoch cap).
        defaults: trainforge at its defaults, stopped once it reached the plain loop's best.
        n_valid: validation rows (accuracies within half a row count as equal).
        capped: the plain loop hit its epoch cap before early stopping.
    """

    plain: Run
    defaults: Run
    n_valid: int
    capped: bool

    def targets(self) -> dict[str, float]:
        """The accuracies to reach: the plain loop's best of any epoch (the aim's target) and
        that of the weights it restores (its lowest validation loss epoch)."""
        best_loss = min(self.plain.timeline, key=lambda entry: entry["val_loss"])
        return {
            "best of any epoch": max(entry["val_accuracy"] for entry in self.plain.timeline),
            "restored weights": best_loss["val_accuracy"],
        }

    def first(self, run: Run, target: float) -> dict | None:
        """The first epoch of ``run`` at or above ``target``, or None."""
        for entry in run.timeline:
            if entry["val_accuracy"] >= target - 0.5 / self.n_valid:
                return entry
        return None


def time_to_target(data: Data, max_epochs: int, budget: float) -> ToTarget:
    """The plain loop to early stopping, then trainforge defaults to its best accuracy.

    Args:
        data: the split dataset.
        max_epochs: cap on the plain loop's epochs.
        budget: seconds trainforge at defaults may train without reaching the target.
    """
    with tempfile.TemporaryDirectory(prefix="mlp-speed-plain-") as folder:
        plain = run_plain(data, max_epochs, Path(folder))
    target = max(entry["val_accuracy"] for entry in plain.timeline)
    print(
        f"  {data.name} plain to early stopping: {plain.epochs} epochs, {plain.seconds:.1f} s, "
        f"best accuracy {target:.4f}",
        file=sys.stderr,
    )

    def stop_when(logs: dict, seconds: float) -> bool:
        done = logs["val_accuracy"] >= target - 0.5 / len(data.X_valid)
        return done or seconds > budget

    defaults = run_trainforge(data, {"random_state": SEED}, stop_when)
    print(
        f"  {data.name} trainforge defaults: {defaults.epochs} epochs, {defaults.seconds:.1f} s",
        file=sys.stderr,
    )
    capped = len(plain.timeline) == max_epochs
    return ToTarget(plain, defaults, len(data.X_valid), capped)


# -- where one training step's time goes -------------------------------------------------------


STEP_PARTS = (
    "next batch",
    "forward + loss",
    "zero_grad",
    "backward",
    "optimizer step",
    "loss bookkeeping",
)


def step_breakdown(data: Data, repeats: int = 3) -> tuple[dict[str, dict[str, float]], str]:
    """Microseconds per batch-32 step, by part: the plain loop vs trainforge's own loop.

    The plain side is the tutorial step with a clock between its lines. The trainforge side is
    a real one-epoch ``MLPClassifier`` fit at the tutorial's settings, its steps split by a
    StepTimer callback (hooks add a few microseconds). Fits alternate; medians over
    ``repeats`` epochs each.

    Returns:
        side -> part -> microseconds per step, and the optimizer trainforge used.
    """
    from torch.utils.data import DataLoader, TensorDataset

    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    criterion = nn.CrossEntropyLoss()
    clock = time.perf_counter

    def plain_epoch() -> dict[str, float]:
        model = tutorial_net(X.shape[1]).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        parts, steps, running = dict.fromkeys(STEP_PARTS, 0.0), 0, 0.0
        t0 = clock()
        for inputs, labels in DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True):
            t1 = clock()
            optimizer.zero_grad()
            t2 = clock()
            loss = criterion(model(inputs), labels)
            t3 = clock()
            loss.backward()
            t4 = clock()
            optimizer.step()
            t5 = clock()
            running += loss.item() * len(inputs)
            t6 = clock()
            spans = (t1 - t0, t3 - t2, t2 - t1, t4 - t3, t5 - t4, t6 - t5)
            for part, seconds in zip(STEP_PARTS, spans):
                parts[part] += seconds
            steps += 1
            t0 = clock()
        return {part: seconds / steps * 1e6 for part, seconds in parts.items()}

    def trainforge_epoch() -> tuple[dict[str, float], str]:
        _, StepTimer = trainforge_classes()
        timer = StepTimer()
        with tempfile.TemporaryDirectory(prefix="mlp-speed-steps-") as folder:
            run_trainforge(data, trainforge_equal(1), step_timer=timer, checkpoint_dir=Path(folder))
        return {k: v / timer.steps * 1e6 for k, v in timer.parts.items()}, timer.optimizer

    samples: dict[str, list[dict[str, float]]] = {"plain": [], "trainforge": []}
    optimizer = ""
    for repeat in range(repeats):
        torch.manual_seed(SEED + repeat)
        samples["plain"].append(plain_epoch())
        parts, optimizer = trainforge_epoch()
        samples["trainforge"].append(parts)
    medians = {
        side: {part: statistics.median(run[part] for run in runs) for part in STEP_PARTS}
        for side, runs in samples.items()
    }
    return medians, optimizer


# -- the report --------------------------------------------------------------------------------


def rate(runs: list[Run], n_train: int) -> float:
    """Median training rows per second of fit wall time."""
    return statistics.median(run.epochs * n_train / run.seconds for run in runs)


def throughput_table(results: dict[str, dict], datasets: dict[str, Data]) -> str:
    """Median rows/s per framework and dataset, and each as a multiple of the plain loop's."""
    lines = [
        "| dataset | framework | epochs per fit | fits | median fit s | median rows/s "
        "| trainforge speed-up |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        n_train = len(datasets[name].X_train)
        ours = rate(runs["trainforge"], n_train)
        for framework, framework_runs in runs.items():
            speed = rate(framework_runs, n_train)
            seconds = statistics.median(run.seconds for run in framework_runs)
            ratio = "" if framework == "trainforge" else f"{ours / speed:.2f}x"
            lines.append(
                f"| {name} | {LABELS[framework]} | {framework_runs[0].epochs} "
                f"| {len(framework_runs)} | {seconds:.2f} | {speed:,.0f} | {ratio} |"
            )
    return "\n".join(lines)


def target_table(targets: dict[str, ToTarget]) -> str:
    """Time to the plain loop's accuracy: plain loop vs trainforge at its defaults."""
    lines = [
        "| dataset | target: plain loop's val accuracy | plain loop: epoch, s "
        "| trainforge defaults: epoch, s | speed-up |",
        "|---|---|---:|---:|---:|",
    ]
    for name, result in targets.items():
        for label, target in result.targets().items():
            plain = result.first(result.plain, target)
            ours = result.first(result.defaults, target)
            cap = " (epoch cap)" if result.capped else ""
            plain_cell = f"{plain['epoch']} of {result.plain.epochs}{cap}, {plain['seconds']:.1f}"
            if ours is None:
                best = max(result.defaults.timeline, key=lambda entry: entry["val_accuracy"])
                short = round((target - best["val_accuracy"]) * result.n_valid)
                ours_cell = (
                    f"not reached in {result.defaults.epochs} epochs, "
                    f"{result.defaults.seconds:.1f} (best {best['val_accuracy']:.4f} at epoch "
                    f"{best['epoch']}, {short} validation rows short)"
                )
                ratio = "—"
            else:
                ours_cell = f"{ours['epoch']}, {ours['seconds']:.1f}"
                ratio = f"{plain['seconds'] / ours['seconds']:.2f}x"
            lines.append(
                f"| {name} | {label}: {target:.4f} | {plain_cell} | {ours_cell} | {ratio} |"
            )
    return "\n".join(lines)


def accuracy_traces(targets: dict[str, ToTarget]) -> str:
    """Validation accuracy and seconds at each epoch's end, both runs, as a code block."""
    lines = []
    for name, result in targets.items():
        for label, run in (("plain loop", result.plain), ("trainforge defaults", result.defaults)):
            per_epoch = run.seconds / max(run.epochs, 1)
            trace = " ".join(f"{entry['val_accuracy']:.4f}" for entry in run.timeline)
            lines.append(f"{name}, {label} ({per_epoch:.2f} s/epoch): {trace}")
    return "```\n" + "\n".join(lines) + "\n```"


def breakdown_table(parts: dict[str, dict[str, float]], optimizer: str) -> str:
    """Microseconds per step by part, one column per side."""
    sides = list(parts)
    names = {"plain": "plain loop (Adam)", "trainforge": f"trainforge ({optimizer})"}
    lines = [
        "| part of one step (µs, median) | " + " | ".join(names[s] for s in sides) + " |",
        "|---|" + "---:|" * len(sides),
    ]
    for part in STEP_PARTS:
        cells = " | ".join(f"{parts[side][part]:.0f}" for side in sides)
        lines.append(f"| {part} | {cells} |")
    totals = {side: sum(parts[side].values()) for side in sides}
    lines.append("| **total** | " + " | ".join(f"**{totals[s]:.0f}**" for s in sides) + " |")
    base = totals[sides[0]]
    lines.append("| plain / this | " + " | ".join(f"{base / totals[s]:.2f}x" for s in sides) + " |")
    return "\n".join(lines)


def aims(results: dict[str, dict], targets: dict[str, ToTarget], datasets: dict[str, Data]) -> str:
    """One line per aim: measured ratio, aim, met or not."""
    lines = []
    for name, runs in results.items():
        n_train = len(datasets[name].X_train)
        ours = rate(runs["trainforge"], n_train)
        for framework, aim in AIMS.items():
            if framework in runs:
                ratio = ours / rate(runs[framework], n_train)
                verdict = "met" if ratio >= aim else "**not met**"
                lines.append(
                    f"- {name}, equal hyperparameters, trainforge / {LABELS[framework]}: "
                    f"{ratio:.2f}x (aim >= {aim:g}x): {verdict}"
                )
    for name, result in targets.items():
        target = result.targets()["best of any epoch"]
        plain, ours = result.first(result.plain, target), result.first(result.defaults, target)
        if ours is None:
            lines.append(
                f"- {name}, trainforge defaults to the plain loop's best accuracy "
                f"({target:.4f}): not reached (aim >= {AIM_DEFAULTS:g}x): **not met**"
            )
            continue
        ratio = plain["seconds"] / ours["seconds"]
        verdict = "met" if ratio >= AIM_DEFAULTS else "**not met**"
        lines.append(
            f"- {name}, trainforge defaults to the plain loop's best accuracy "
            f"({target:.4f}): {ratio:.2f}x faster (aim >= {AIM_DEFAULTS:g}x): {verdict}"
        )
    return "\n".join(lines)


def trainforge_source() -> str:
    """Where trainforge was imported from: this checkout's commit (and whether trainforge/
    has uncommitted changes), or the path of another copy."""
    import subprocess

    import trainforge

    package = Path(trainforge.__file__).resolve().parent
    if package != ROOT / "trainforge":
        return f"imported from {package}"

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "trainforge")
    note = ", with uncommitted changes in trainforge/" if dirty else ""
    return f"this checkout at commit {commit}{note}"


def machine() -> list[str]:
    """Lines describing this machine and the library versions."""
    names = ["trainforge", "torch", "skorch", "lightning", "scikit-learn", "numpy", "pandas"]
    return [
        f"- trainforge: {trainforge_source()}",
        f"{machine_line()}; torch intra-op threads: {torch.get_num_threads()}; "
        f"load average (1, 5, 15 min) {LOAD_AT_START} at the start, {load_average()} at the end",
        f"- Python {platform.python_version()}; {versions(names)}",
    ]


REPORT = """{section}

- Command: `{command}`
- Date: {date}
{machine}
- Data: {datasets}.
  Each is split once, stratified 80/20 with seed 0 ({n_train} training rows); adult's
  numbers are median-imputed and standardised and its categories one-hot encoded (fitted on
  the training rows); the synthetic table is `make_classification(200_000, 50,
  n_informative=20, n_redundant=10, n_clusters_per_class=4, flip_y=0.02, random_state=0)`.
  Every framework trains on the same rows and validates on the same rows.
- Threads: every framework runs with `torch.set_num_threads({threads})` (`--threads`).
  At these sizes two threads are no faster than one on a quiet machine, and while other work
  shares the two cores, two OpenMP threads made a batch-32 epoch on adult 20-40x slower
  (29 s instead of 0.7 s), for every framework alike.
- Equal hyperparameters: MLP 128-64, ReLU, dropout 0.3/0.2, Adam lr 1e-3 (no weight decay),
  batches of 32 shuffled each epoch, cross-entropy, validation loss and accuracy every epoch,
  early stopping on validation loss with patience 5, a best-weights save on every improving
  epoch, the best weights restored at the end. The plain loop is the tutorial pattern
  (`TensorDataset` + `DataLoader(shuffle=True)`, `loss.item()` every step, `torch.save` of the
  state dict); skorch uses `EarlyStopping(threshold=0)` and `Checkpoint(load_best=True)` with
  its default files (parameters, optimizer, criterion, history); Lightning uses
  `EarlyStopping` and `ModelCheckpoint(save_top_k=1)` (a full checkpoint with optimizer
  state), no logger, progress bar or model summary. trainforge
  (`MLPClassifier(hidden_sizes=(128, 64), dropout=(0.3, 0.2), optimizer="adam",
  learning_rate=1e-3, weight_decay=0.0, batch_size=32, patience=5, schedule=None,
  random_state=0).fit(X, y, checkpoint_dir=<temporary folder>)`) saves more: a full
  resumable checkpoint (weights, optimizer, early-stopping state with its best-weights copy,
  RNG states) every epoch and `best.safetensors` on every improvement, each fsynced. The
  plain loop, skorch and Lightning validate in batches of 32; trainforge validates in one
  pass of up to 8,192 rows.
- trainforge draws its validation rows inside `fit`. It is given the training rows followed by
  the validation rows, and its private split function (`trainforge.models.neural._split`) is
  replaced for the duration of the fit so that it holds out exactly the benchmark's validation
  rows. Nothing in `trainforge/` is changed.

### Throughput at equal hyperparameters

Training rows per second of fit wall time: epochs x training rows / seconds from the start of
the fit call to the best weights restored, validation and checkpoint saves included, data
preparation and imports excluded. To bound the run time every framework runs a fixed number
of epochs (early stopping cannot trigger that soon), {repeats} fits each with the frameworks
in rotating order, after one untimed warm-up fit each on 512 rows; medians.
Epochs per fit: {epochs}.
"trainforge speed-up" is trainforge's median rows/s over that row's.

{throughput}

### Time to the plain loop's best validation accuracy

The plain loop runs to early stopping (epoch cap: {caps}). The aim's target is its highest
validation accuracy of any epoch; the accuracy of the weights it restores (its lowest
validation loss epoch) is shown too. A run's time to a target is the wall time from the start
of its fit to the end of the first epoch at or above it (validation and saves included).
trainforge runs at its defaults, `MLPClassifier(random_state=0)` (256-128, dropout 0.1, AdamW
lr 1e-3 with weight decay 1e-4, batches of 256, learning rate halved on a plateau, patience 10,
no checkpoint folder), on the same rows; its fit is stopped once it reaches the higher target
(or after {budget:.0f} s). Speed-up = plain seconds / trainforge seconds.

{targets}

Validation accuracy at the end of each epoch (the same {n_valid} rows for both):

{traces}

### Where one training step goes

Microseconds per batch-32 step on adult, by part ({breakdown_repeats} one-epoch fits per
column, alternating; medians). The plain column is the tutorial step with a clock between its
lines. The trainforge column is a real `MLPClassifier` fit at the settings above, each step
split by a callback and hooks on the loop's model, loss, optimizer and `zero_grad` (they add a
few microseconds). "next batch" is the DataLoader's fetch and collate for the plain loop and
everything between two steps for trainforge (taking the batch's rows, loop control; the
epoch's first step also carries the epoch's set-up); "backward" includes the callbacks'
`after_backward`; "loss bookkeeping" is `loss.item()` for the plain loop, and the on-device
loss sum plus the callbacks' `on_batch_end` for trainforge.

{breakdown}

### Against the aims

{aims}
{notes}"""


def report(results, targets, breakdown, datasets, args, command, notes) -> str:
    """The markdown section for RESULTS.md (also printed)."""
    epochs = {"adult": args.epochs, "synthetic": args.synthetic_epochs}
    caps = {"adult": args.max_epochs, "synthetic": args.synthetic_max_epochs}
    plural = {1: "epoch"}
    return REPORT.format(
        section=SECTION,
        command=command,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine="\n".join(machine()),
        datasets="; ".join(f"{d.name} ({d.shape})" for d in datasets.values()),
        n_train=" and ".join(f"{len(d.X_train):,}" for d in datasets.values()),
        threads=torch.get_num_threads(),
        epochs=", ".join(
            f"{epochs[name]} {plural.get(epochs[name], 'epochs')} on {name}" for name in datasets
        ),
        repeats=args.repeats,
        throughput=throughput_table(results, datasets),
        caps=", ".join(f"{caps[name]} epochs on {name}" for name in datasets),
        budget=args.budget,
        targets=target_table(targets),
        n_valid=" / ".join(f"{len(d.X_valid):,}" for d in datasets.values()),
        traces=accuracy_traces(targets),
        breakdown_repeats=args.breakdown_repeats,
        breakdown=breakdown_table(*breakdown),
        aims=aims(results, targets, datasets),
        notes="".join(f"\n- {note}" for note in notes),
    )


def write_section(section: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it), leaving the rest."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = text.find("\n## ", start + len(SECTION))
        rest = "" if end < 0 else "\n" + text[end + 1 :]
        text = text[:start] + section.rstrip("\n") + "\n" + rest
    path.write_text(text)


def quiet_libraries() -> None:
    """Silence Lightning's info lines and the warnings every framework prints on CPU."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
    warnings.filterwarnings("ignore", category=UserWarning, module="skorch")


def import_all(frameworks: tuple[str, ...]) -> None:
    """Import every framework up front, so no import lands inside a timed fit."""
    import sklearn.model_selection  # noqa: F401

    import trainforge.models.neural  # noqa: F401

    if "skorch" in frameworks:
        import skorch  # noqa: F401
    if "lightning" in frameworks:
        import lightning  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="path to adult.csv")
    parser.add_argument("--repeats", type=int, default=5, help="throughput fits per framework")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per throughput fit, adult")
    parser.add_argument(
        "--synthetic-epochs", type=int, default=1, help="epochs per throughput fit, synthetic table"
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=100,
        help="cap on the plain loop's early-stopped run, adult",
    )
    parser.add_argument(
        "--synthetic-max-epochs",
        type=int,
        default=40,
        help="cap on the plain loop's early-stopped run, synthetic table",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="seconds trainforge defaults may train without reaching the target",
    )
    parser.add_argument(
        "--datasets", nargs="+", choices=("adult", "synthetic"), default=["adult", "synthetic"]
    )
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads for every framework (0: torch's default)",
    )
    parser.add_argument(
        "--breakdown-repeats",
        type=int,
        default=3,
        help="epochs per side for the per-step breakdown",
    )
    parser.add_argument("--write", action="store_true", help=f"write the section to {RESULTS}")
    args = parser.parse_args()
    if "plain" not in args.frameworks or "trainforge" not in args.frameworks:
        parser.error("--frameworks must include plain and trainforge")

    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    frameworks, notes = available(tuple(args.frameworks))
    import_all(frameworks)
    loaders = {"adult": lambda: load_adult(args.data), "synthetic": make_synthetic}
    datasets = {name: loaders[name]() for name in args.datasets}
    epochs = {"adult": args.epochs, "synthetic": args.synthetic_epochs}
    caps = {"adult": args.max_epochs, "synthetic": args.synthetic_max_epochs}

    results, targets = {}, {}
    for name, data in datasets.items():
        print(f"{name}: {data.shape}", file=sys.stderr)
        warm_up(frameworks, data)
        results[name] = throughput(frameworks, data, epochs[name], args.repeats)
        targets[name] = time_to_target(data, caps[name], args.budget)
    breakdown_data = datasets.get("adult") or next(iter(datasets.values()))
    print(f"step breakdown on {breakdown_data.name}", file=sys.stderr)
    breakdown = step_breakdown(breakdown_data, args.breakdown_repeats)

    python = os.path.relpath(sys.executable) if sys.executable.startswith(str(ROOT)) else "python"
    command = shlex.join([python, os.path.relpath(__file__), *sys.argv[1:]])
    section = report(results, targets, breakdown, datasets, args, command, notes)
    print(section)
    if args.write:
        write_section(section)
        print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
