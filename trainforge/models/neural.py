"""MLP estimators for tables, on trainforge's training loop, with the scikit-learn contract.

``__init__`` only stores parameters (checked in ``fit`` from ``_parameter_constraints``), fit
returns self, learned state ends in ``_``. Where a fit writes and whom it tells are ``fit``'s
keyword arguments (trainforge.training.runtime): with ``checkpoint_dir`` it writes resumable
checkpoints there; with ``resume=True`` it continues from the newest good one, bit for bit.
"""

from __future__ import annotations

import warnings
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from trainforge.models.nets.mlp import ACTIVATIONS, MLP, MLPConfig
from trainforge.models.torch_core import TRAINING_CONSTRAINTS, estimator_init
from trainforge.training.callbacks.early_stopping import EarlyStopping
from trainforge.training.callbacks.grad_clip import GradientClipping
from trainforge.training.callbacks.lr_schedule import LRSchedule
from trainforge.training.determinism import deterministic
from trainforge.training.loop import Loop, fit
from trainforge.training.losses import build_loss, default_loss
from trainforge.training.optim import build_optimizer
from trainforge.training.runtime import NAMES as RUNTIME_NAMES
from trainforge.training.runtime import FitRuntime, identity, runtime_callbacks, starting_loop
from trainforge.training.schedules import build_schedule

PREDICT_BATCH = 8192


class _MLPBase(BaseEstimator):
    _parameter_constraints = {
        "hidden_sizes": [tuple, list],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left"), tuple, list],
        "norm": [StrOptions({"batch", "layer"}), None],
        "residual": ["boolean"],
        **TRAINING_CONSTRAINTS,
    }

    __init__ = estimator_init(
        {
            "hidden_sizes": (256, 128),
            "activation": "relu",
            "dropout": 0.1,
            "norm": None,
            "residual": False,
        }
    )

    # -- fitting ---------------------------------------------------------------------------

    # ``fit``'s keyword arguments about where the fit writes and whom it tells
    FIT_RUNTIME = RUNTIME_NAMES

    def _fit(self, X: np.ndarray, targets: np.ndarray, n_outputs: int, task: str, runtime: dict):
        runtime = FitRuntime.of(type(self).__name__, runtime)
        if runtime.data_parallel > 1:  # on Ray Train workers, each running what follows
            from trainforge.distributed import fit_data_parallel

            return fit_data_parallel(self, X, targets, n_outputs, task, runtime)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        train, valid = _split(len(X), self.validation_fraction, seed)
        batch_size, n_train, sync = self.batch_size, len(train), []
        if runtime.shard is not None:  # one data-parallel worker: its share of each batch
            from trainforge.training.callbacks.data_parallel import AllReduce

            if self.precision == "16":  # each worker's scaler would skip steps on its own
                raise ValueError("data-parallel training takes precision '32' or 'bf16', not '16'")
            workers = runtime.shard[1]
            batch_size, n_train = max(1, self.batch_size // workers), len(train) // workers
            sync = [AllReduce(workers)]
        device = torch.device(self.device)
        X_t = self._tensor(X, device)
        y_t = torch.as_tensor(targets, device=device)
        loss_fn = self._loss(task)
        monitor = "val_loss" if len(valid) else "loss"
        checkpoint_identity = identity(self, X, targets)

        graph = self.cuda_graph and self._GRAPH_STEP and device.type == "cuda" and not self.compile

        def build() -> Loop:
            torch.manual_seed(seed)
            model = self._network(X, n_outputs).to(device)
            if runtime.shard is not None:  # the same weights everywhere, its own dropout
                torch.manual_seed(seed + 1 + runtime.shard[0])
            loop = Loop(
                model=model,
                optimizer=build_optimizer(
                    self.optimizer,
                    model.parameters(),
                    lr=self.learning_rate,
                    weight_decay=self.weight_decay,
                    capturable=graph,
                ),
                loss_fn=loss_fn,
                generator=torch.Generator().manual_seed(seed),
                max_epochs=self.max_epochs,
                batch_size=batch_size,
                l1=self.l1,
                forward=torch.compile(model) if self.compile else None,
                precision=self.precision,
                graph=graph,
                shard=runtime.shard,
            )
            loop.callbacks = [
                *sync,  # first: everything after it sees the workers' averaged gradients
                *self._callbacks(loop, monitor, n_train),
                *runtime_callbacks(
                    runtime, monitor, checkpoint_identity, self.checkpoint_every_steps
                ),
            ]
            return loop

        loop = starting_loop(build, runtime, checkpoint_identity)
        model = loop.model
        evaluate = _evaluator(X_t[valid], y_t[valid], loss_fn, task) if len(valid) else None
        with deterministic(self.deterministic, device):
            fit(loop, X_t[train], y_t[train], evaluate)
        self.model_ = model.eval()
        self.history_ = loop.history
        self.n_epochs_ = loop.epoch
        self.n_iter_ = loop.epoch  # scikit-learn's name for the epochs run
        stopper = next(c for c in loop.callbacks if isinstance(c, EarlyStopping))
        self.best_epoch_ = stopper.best_epoch
        self.n_features_in_ = X.shape[1]
        if loop.epoch >= self.max_epochs:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(
                ConvergenceWarning(
                    f"training reached max_epochs={self.max_epochs} before early stopping "
                    f"ended it (best epoch {self.best_epoch_}); raise max_epochs"
                ),
                stacklevel=2,
            )
        return self

    # -- what subclasses for other inputs (images, sequences) replace ----------------------

    # Whether ``cuda_graph`` captures this network's training step on a GPU. Only the MLPs
    # do: on an H200 the MLP's capture worked in every fresh fit, while the Transformer's
    # failed, the RNN sends padding lengths to the host (which no capture allows), a small CNN
    # (16x16 images, batches of 32) failed at every capture, and the Fashion-MNIST CNNs
    # captured but their one-cycle schedule changes the rate every step, so after 20 captures
    # they trained eagerly anyway (benchmarks/RESULTS.md "GPU").
    _GRAPH_STEP = False

    def _loss(self, task: str) -> torch.nn.Module:
        """The training loss (a network with several outputs per row wraps it)."""
        return build_loss(default_loss(task) if self.loss == "auto" else self.loss)

    def _network(self, X: np.ndarray, n_outputs: int) -> torch.nn.Module:
        """A fresh network for inputs like ``X``; its ``config`` dataclass is saved with it."""
        config = MLPConfig(
            X.shape[1],
            n_outputs,
            tuple(self.hidden_sizes),
            self.activation,
            _dropout(self.dropout),
            self.norm,
            self.residual,
        )
        return MLP(config)

    @classmethod
    def _rebuild(cls, config: dict) -> torch.nn.Module:
        """The network ``_network`` made, from its saved config (JSON lists as tuples)."""
        return MLP(MLPConfig(**config))

    def _tensor(self, X: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(X, dtype=torch.float32, device=device)

    def _check(self, X) -> np.ndarray:
        """Prediction input as the network's input array (checked against the fitted shape)."""
        return validate_data(self, X, reset=False, dtype=np.float32)

    # -- training parts --------------------------------------------------------------------

    def _callbacks(self, loop, monitor: str, n_train: int) -> list:
        """The model's own training callbacks (schedule, clipping, early stopping); the
        runtime's (progress, listeners, checkpointing) follow them."""
        callbacks = []
        steps_per_epoch = -(-n_train // loop.batch_size)
        schedule = build_schedule(
            self.schedule,
            loop.optimizer,
            steps_per_epoch=steps_per_epoch,
            max_epochs=self.max_epochs,
        )
        if schedule is not None:
            callbacks.append(LRSchedule(schedule, monitor=monitor))
        if self.grad_clip:
            callbacks.append(GradientClipping(self.grad_clip))
        callbacks.append(EarlyStopping(monitor=monitor, patience=self.patience))
        return callbacks

    # -- saving without pickle -------------------------------------------------------------

    _FITTED = (
        "classes_",
        "n_features_in_",
        "y_mean_",
        "y_scale_",
        "history_",
        "n_epochs_",
        "n_iter_",
        "best_epoch_",
    )

    def save_files(self, folder: Path) -> list[str]:
        """Write the fitted estimator as ``estimator.json`` + ``weights.safetensors``."""
        from trainforge.models.saved import save_network

        check_is_fitted(self, "model_")
        return save_network(self, folder, self._FITTED)

    @classmethod
    def load_files(cls, folder: Path):
        """Rebuild a fitted estimator written by ``save_files`` (JSON and tensors only)."""
        from safetensors.torch import load_file

        from trainforge.models.saved import as_array, checked_network, read_saved

        saved = read_saved(folder, cls, cls._FITTED)
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in saved["params"].items()}
        estimator = cls(**params)
        estimator._validate_params()  # types and ranges, as a fit would check them
        for key, value in saved["fitted"].items():
            setattr(estimator, key, as_array(key, value))
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()}
        weights = load_file(folder / "weights.safetensors")
        estimator.model_ = checked_network(lambda: cls._rebuild(config), weights)
        estimator.model_.eval()
        return estimator

    def _forward(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = self._check(X)
        device = next(self.model_.parameters()).device
        outputs = []
        with torch.no_grad():
            for start in range(0, len(X), PREDICT_BATCH):
                batch = self._tensor(X[start : start + PREDICT_BATCH], device)
                outputs.append(self.model_(batch).float().cpu())
        return torch.cat(outputs) if outputs else torch.empty((0, 1))


class MLPClassifier(ClassifierMixin, _MLPBase):
    """A multi-layer perceptron classifier trained with trainforge's loop.

    Defaults work on typical scaled tables: two hidden layers (256, 128) with ReLU and dropout
    0.1, AdamW (lr 1e-3, weight decay 1e-4), batches of 256, learning rate halved on a
    validation-loss plateau, early stopping after 10 epochs without improvement on a 10%
    validation split, restoring the best epoch's weights. ``precision`` (``"bf16"``, ``"16"``)
    and ``compile`` are opt-in speed-ups for GPUs; docs/training.md says what they change.
    """

    _GRAPH_STEP = True

    def fit(self, X, y, **runtime):
        """Train on ``X``, ``y``; ``runtime``: checkpoints, resuming, callbacks, listeners
        (trainforge.training.runtime.FitRuntime)."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("the target has 1 class; a classifier needs at least 2")
        return self._fit(X, codes.astype(np.int64), len(self.classes_), "multiclass", runtime)

    def predict_proba(self, X) -> np.ndarray:
        return torch.softmax(self._forward(X), dim=1).numpy().astype(np.float64)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]


class MLPRegressor(RegressorMixin, _MLPBase):
    """A multi-layer perceptron regressor trained with trainforge's loop.

    The target is standardised for training and predictions are scaled back. Defaults as for
    MLPClassifier.
    """

    _GRAPH_STEP = True

    def fit(self, X, y, **runtime):
        """Train on ``X``, ``y``; ``runtime`` as for MLPClassifier.fit."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        scaled = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)
        return self._fit(X, scaled, 1, "regression", runtime)

    def predict(self, X) -> np.ndarray:
        out = self._forward(X)[:, 0].numpy().astype(np.float64)
        return out * self.y_scale_ + self.y_mean_


def _split(n_rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation row indices; no validation rows for tiny data."""
    n_valid = int(round(n_rows * fraction))
    if n_valid < 2 or n_rows - n_valid < 2:
        return np.arange(n_rows), np.arange(0)
    order = np.random.RandomState(seed).permutation(n_rows)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def _dropout(value):
    return tuple(value) if isinstance(value, (list, tuple)) else float(value)


def _evaluator(X: torch.Tensor, y: torch.Tensor, loss_fn, task: str):
    """Validation metrics for the model: loss, and accuracy for classification."""

    def evaluate(model) -> dict:
        outputs = torch.cat(
            [model(X[i : i + PREDICT_BATCH]) for i in range(0, len(X), PREDICT_BATCH)]
        )
        logs = {"val_loss": float(loss_fn(outputs, y))}
        if task != "regression":
            logs["val_accuracy"] = float((outputs.argmax(dim=1) == y).double().mean())
        return logs

    return evaluate
