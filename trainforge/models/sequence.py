"""RNN and Transformer estimators for text and sequences, on trainforge's training loop.

They follow the MLP estimators (trainforge.models.neural): the same training settings, early
stopping, checkpoints and bit-identical resume, the same JSON + safetensors saving. What they
add is how inputs become tensors:

- text (strings, one per row, or a one-column table): a BPE tokenizer is trained on the
  training texts in ``fit`` and saved with the model as JSON; texts become int64 token ids,
  truncated to ``max_length`` and padded with id 0, from which the network builds its mask;
- series (a 3-D array ``(series, steps, channels)``, or 2-D rows of flattened series with
  ``channels`` interleaved): scaled per channel with training statistics; shorter series end
  in NaN and are masked (see trainforge.data.sequences).
"""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from trainforge.data import sequences, text
from trainforge.errors import DataError
from trainforge.models.nets.rnn import CELLS, RNN, RNNConfig
from trainforge.models.nets.rnn import POOLING as RNN_POOLING
from trainforge.models.nets.transformer import POOLING as TRANSFORMER_POOLING
from trainforge.models.nets.transformer import TransformerConfig, TransformerEncoder
from trainforge.models.neural import _MLPBase
from trainforge.models.series_input import SeriesInput
from trainforge.models.torch_core import TRAINING_CONSTRAINTS, estimator_init

PREDICT_BATCH = 512  # attention over long inputs needs far less than the MLP's 8192 rows
TOKENIZER_FILE = "tokenizer.json"
AUTO_PATCHES = 32  # series longer than this many steps are read in patches by default
_INPUTS = {
    "vocab_size": [Interval(Integral, 16, None, closed="left")],
    "max_length": [Interval(Integral, 1, None, closed="left")],
    "channels": [Interval(Integral, 1, None, closed="left")],
    "patch_size": [Interval(Integral, 1, None, closed="left"), None],
    "dropout": [Interval(Real, 0, 1, closed="left")],
}
# the inputs' defaults: a text's tokenizer and length, a series' channels and patches
INPUTS = {"vocab_size": 8000, "max_length": 128, "channels": 1, "patch_size": None}
# small batches and clipped gradients: what the sequence nets train with by default
SEQUENCE_TRAINING = {"batch_size": 32, "max_epochs": 100, "grad_clip": 1.0}


class _SequenceBase(SeriesInput, _MLPBase):
    """Input handling shared by the RNN and Transformer estimators."""

    _FITTED = _MLPBase._FITTED + ("input_kind_", "seq_len_", "channel_mean_", "channel_scale_")

    def _learn_inputs(self, X, y, y_numeric: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Learn the tokenizer or the channel scaling from training inputs; the network input
        and the checked targets."""
        if text.is_text(X):
            texts = text.as_texts(X)
            self.input_kind_ = "text"
            self.tokenizer_ = text.train_tokenizer(texts, self.vocab_size)
            self.seq_len_ = text.fitted_length(self.tokenizer_, texts, self.max_length)
            inputs = text.encode(self.tokenizer_, texts, self.seq_len_)
            self.n_features_in_ = 1
            return inputs, _targets(y, len(inputs))
        array, lengths, y = self._series(X, y, reset=True, y_numeric=y_numeric)
        mean, scale = sequences.channel_stats(array, lengths)
        self.input_kind_, self.seq_len_ = "series", int(array.shape[1])
        self.channel_mean_, self.channel_scale_ = mean.tolist(), scale.tolist()
        return sequences.network_input(array, lengths, mean, scale), np.asarray(y)

    def _check(self, X) -> np.ndarray:
        """Prediction inputs through the fitted tokenizer or scaling."""
        if self.input_kind_ == "text":
            if not text.is_text(X) and len(np.asarray(X, dtype=object)):
                raise DataError("this model was trained on text; give strings to predict on")
            return text.encode(self.tokenizer_, text.as_texts(X), self.seq_len_)
        array, lengths, _ = self._series(X)
        trained = len(self.channel_mean_)
        if array.shape[2] != trained:
            raise DataError(
                f"sequences: the model was trained on {trained} channel(s), got {array.shape[2]}"
            )
        return sequences.network_input(
            array, lengths, np.asarray(self.channel_mean_), np.asarray(self.channel_scale_)
        )

    def _tensor(self, X: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(X, device=device)  # int64 token ids or float32 series

    def _n_inputs(self) -> int:
        if self.input_kind_ == "text":
            return self.tokenizer_.get_vocab_size()
        return len(self.channel_mean_)

    def _patch(self) -> int:
        """Steps per patch: ``patch_size``, or by default about 32 patches per series."""
        if self.input_kind_ == "text":
            return 1
        return self.patch_size or max(1, -(-self.seq_len_ // AUTO_PATCHES))

    def _forward(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        inputs = self._check(X)
        device = next(self.model_.parameters()).device
        outputs = []
        with torch.no_grad():
            for start in range(0, len(inputs), PREDICT_BATCH):
                batch = self._tensor(inputs[start : start + PREDICT_BATCH], device)
                outputs.append(self.model_(batch).float().cpu())
        return torch.cat(outputs) if outputs else torch.empty((0, 1))

    # -- saving: the MLP's JSON + safetensors, plus the tokenizer as its own JSON -----------

    def save_files(self, folder: Path) -> list[str]:
        names = super().save_files(folder)
        if getattr(self, "input_kind_", None) == "text":
            (folder / TOKENIZER_FILE).write_text(text.tokenizer_json(self.tokenizer_))
            names.append(TOKENIZER_FILE)
        return names

    @classmethod
    def load_files(cls, folder: Path):
        estimator = super().load_files(folder)
        if estimator.input_kind_ == "text":
            estimator.tokenizer_ = text.tokenizer_from_json((folder / TOKENIZER_FILE).read_text())
        return estimator


class _SequenceClassifier(ClassifierMixin):
    def fit(self, X, y, **runtime):
        """Train on texts or series ``X`` and labels ``y``; ``runtime`` as for
        MLPClassifier.fit."""
        self._validate_params()
        inputs, y = self._learn_inputs(X, y)
        width = self.n_features_in_  # of the input, not of the network's input
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("the target has 1 class; a classifier needs at least 2")
        self._fit(inputs, codes.astype(np.int64), len(self.classes_), "multiclass", runtime)
        self.n_features_in_ = width
        return self

    def predict_proba(self, X) -> np.ndarray:
        return torch.softmax(self._forward(X), dim=1).numpy().astype(np.float64)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]


class _SequenceRegressor(RegressorMixin):
    def fit(self, X, y, **runtime):
        """Train on texts or series ``X`` and a numeric ``y``; ``runtime`` as for
        MLPClassifier.fit."""
        self._validate_params()
        inputs, y = self._learn_inputs(X, y, y_numeric=True)
        width = self.n_features_in_
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise DataError("the regression target holds NaN or infinite values")
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        scaled = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)
        self._fit(inputs, scaled, 1, "regression", runtime)
        self.n_features_in_ = width
        return self

    def predict(self, X) -> np.ndarray:
        out = self._forward(X)[:, 0].numpy().astype(np.float64)
        return out * self.y_scale_ + self.y_mean_


def _targets(y, n_rows: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n_rows:
        raise DataError(f"y: expected {n_rows} target values, got shape {y.shape}")
    return y


# -- the two families ------------------------------------------------------------------------


class _RNNBase(_SequenceBase):
    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        **_INPUTS,
        "cell": [StrOptions(set(CELLS))],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "layers": [Interval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "pooling": [StrOptions(set(RNN_POOLING))],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
    }

    __init__ = estimator_init(
        {
            "cell": "gru",
            "hidden_size": 64,
            "layers": 1,
            "bidirectional": True,
            "pooling": "mean",
            "embedding_dim": 64,
            "dropout": 0.1,
            **INPUTS,
        },
        learning_rate=2e-3,
        **SEQUENCE_TRAINING,
    )

    def _network(self, X, n_outputs: int) -> torch.nn.Module:
        config = RNNConfig(
            self.input_kind_ == "text",
            self._n_inputs(),
            n_outputs,
            self.cell,
            self.embedding_dim,
            self.hidden_size,
            self.layers,
            self.bidirectional,
            self.pooling,
            float(self.dropout),
            self._patch(),
        )
        return RNN(config)

    @classmethod
    def _rebuild(cls, config: dict) -> torch.nn.Module:
        return RNN(RNNConfig(**config))


class _TransformerBase(_SequenceBase):
    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        **_INPUTS,
        "d_model": [Interval(Integral, 1, None, closed="left")],
        "heads": [Interval(Integral, 1, None, closed="left")],
        "layers": [Interval(Integral, 1, None, closed="left")],
        "ff_dim": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions(set(TRANSFORMER_POOLING))],
    }

    __init__ = estimator_init(
        {
            "d_model": 64,
            "heads": 4,
            "layers": 2,
            "ff_dim": 128,
            "pooling": "cls",
            "dropout": 0.1,
            **INPUTS,
        },
        **SEQUENCE_TRAINING,
    )

    def _network(self, X, n_outputs: int) -> torch.nn.Module:
        if self.d_model % self.heads:
            raise DataError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        config = TransformerConfig(
            self.input_kind_ == "text",
            self._n_inputs(),
            n_outputs,
            self.d_model,
            self.heads,
            self.layers,
            self.ff_dim,
            float(self.dropout),
            self.pooling,
            self._patch(),
        )
        return TransformerEncoder(config)

    @classmethod
    def _rebuild(cls, config: dict) -> torch.nn.Module:
        return TransformerEncoder(TransformerConfig(**config))


class RNNClassifier(_SequenceClassifier, _RNNBase):
    """A recurrent classifier (bidirectional GRU by default) for text or series.

    Defaults: one bidirectional GRU layer of 64 units, mean pooling over real steps, token
    embeddings of 64 (BPE vocabulary of 8,000, texts cut at 128 tokens), AdamW lr 2e-3,
    batches of 32, gradients clipped at norm 1, lr halved on a plateau, early stopping after
    10 epochs on a 10% validation split with the best weights restored.
    """


class RNNRegressor(_SequenceRegressor, _RNNBase):
    """A recurrent regressor for text or series; the target is standardised for training."""


class TransformerClassifier(_SequenceClassifier, _TransformerBase):
    """A Transformer encoder classifier for text or series.

    Defaults: 2 pre-norm blocks of width 64 with 4 heads and an MLP of 128, sinusoidal
    positions, a learned CLS token for pooling, AdamW lr 1e-3; otherwise as RNNClassifier.
    """


class TransformerRegressor(_SequenceRegressor, _TransformerBase):
    """A Transformer encoder regressor for text or series; the target is standardised."""
