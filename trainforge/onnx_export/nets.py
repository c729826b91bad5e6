"""Image and sequence nets (CNN, RNN, Transformer, InceptionTime) as ONNX.

Each net is traced by ``torch.onnx.export`` inside a small module that does what the estimator
does before and after its network, so the graph takes the array a user has and gives what the
Python model gives:

- images: ``images`` float32 ``(rows, height, width, channels)``, pixels in the units the model
  was trained on; normalised per channel with the training mean and deviation, then the CNN.
- series: ``series`` float32 ``(rows, steps, channels)``, a shorter series ending in NaN; each
  series' length is its steps up to the last with a value, its steps scaled per channel and
  the padding masked, as in Python. A NaN *inside* a series (a gap), which Python refuses, is
  not checked by the graph.
- text: ``tokens`` int64 ``(rows, length)``, token ids from the model's own tokenizer (written
  beside the graph as ``<file>.tokenizer.json``, the Hugging Face ``tokenizers`` format),
  padded with 0 to the length in the manifest; the graph does not tokenize.

The outputs are ``probabilities`` (softmax of the logits) or ``variable`` (the value in the
target's units), joined into ``label`` and ``probabilities`` or ``value`` by
trainforge.onnx_export.combine like every other part.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

import numpy as np
import pandas as pd

from trainforge.errors import DataError

NET_FAMILIES = ("cnn", "rnn", "transformer", "inception_time")
SHORTENED = 50  # check rows whose series are cut short, to check the masking


def input_kind(estimator) -> str:
    """``images``, ``series`` or ``tokens``: the graph's one input."""
    if hasattr(estimator, "image_shape_"):
        return "images"
    return "tokens" if estimator.input_kind_ == "text" else "series"


def net_graph(estimator, classification: bool, opset: int):
    """``estimator``'s network with its input handling, as an ONNX model."""
    import onnx
    import torch

    kind = input_kind(estimator)
    wrapped = _module()(estimator, kind, classification).eval()
    example = torch.as_tensor(_example(estimator, kind))
    buffer = io.BytesIO()
    output = "probabilities" if classification else "variable"
    try:
        # with gradients on: under no_grad attention takes a fused kernel ONNX has no form of;
        # the tracer's warnings are about shapes, and the graph is verified on rows anyway
        with warnings.catch_warnings(), _native_stderr_dropped():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (example,),
                buffer,
                dynamo=False,
                input_names=[kind],
                output_names=[output],
                dynamic_axes={kind: {0: "rows"}, output: {0: "rows"}},
                opset_version=opset,
            )
    except Exception as exc:  # noqa: BLE001 - the exporter's refusal, in one line
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DataError(
            f"export: {type(estimator).__name__}'s network cannot be traced to ONNX "
            f"({type(exc).__name__}: {message})"
        ) from None
    return onnx.load_from_string(buffer.getvalue())


def feeds(model, features: pd.DataFrame) -> dict[str, np.ndarray]:
    """The graph's input for rows of the model's feature frame: the same values, as the array
    a user would give."""
    estimator = _estimators(model)[0]
    kind = input_kind(estimator)
    if kind == "tokens":
        return {"tokens": estimator._check(_texts(features)).astype(np.int64)}
    flat = features.to_numpy(dtype=np.float32)
    if kind == "images":
        return {"images": flat.reshape(len(flat), *estimator.image_shape_)}
    return {"series": flat.reshape(len(flat), estimator.seq_len_, len(estimator.channel_mean_))}


def check_rows(features: pd.DataFrame, model, seed: int = 0) -> pd.DataFrame:
    """Training rows, plus for series copies cut short by a random number of steps (trailing
    NaN), so that the graph's masking is checked too."""
    from trainforge.onnx_export.verify import SAMPLE_ROWS

    rng = np.random.RandomState(seed)
    base = features.iloc[rng.choice(len(features), min(SAMPLE_ROWS, len(features)), False)]
    estimator = _estimators(model)[0]
    if input_kind(estimator) != "series":
        return base
    few = base.iloc[: min(SHORTENED, len(base))]
    steps, channels = estimator.seq_len_, len(estimator.channel_mean_)
    values = few.to_numpy(dtype=np.float64, copy=True).reshape(len(few), steps, channels)
    for row, cut in enumerate(rng.randint(1, steps, size=len(few))):
        values[row, steps - cut :] = np.nan  # at least one step left
    few = pd.DataFrame(values.reshape(len(few), -1), columns=features.columns)
    return pd.concat([base, few], ignore_index=True)


def tokenizer_json(model) -> str | None:
    estimator = _estimators(model)[0]
    if input_kind(estimator) != "tokens":
        return None
    from trainforge.data import text

    return text.tokenizer_json(estimator.tokenizer_)


def is_net(model) -> bool:
    return getattr(model, "family", None) in NET_FAMILIES


def _estimators(model) -> list:
    from trainforge.model import BaggedModel

    parts = model.folds if isinstance(model, BaggedModel) else [model]
    return [part.pipeline[-1] for part in parts]


def _texts(features: pd.DataFrame):
    if features.shape[1] != 1:
        raise DataError(f"export: a text model takes one text column, got {features.shape[1]}")
    return features.iloc[:, 0].astype(str).tolist()


def _example(estimator, kind: str) -> np.ndarray:
    if kind == "images":
        return np.zeros((2, *estimator.image_shape_), dtype=np.float32)
    if kind == "tokens":
        return np.ones((2, estimator.seq_len_), dtype=np.int64)
    return np.zeros((2, estimator.seq_len_, len(estimator.channel_mean_)), dtype=np.float32)


def _module():
    import torch

    class Wrapped(torch.nn.Module):
        """What ``predict_proba`` / ``predict`` do around the network, in torch ops."""

        def __init__(self, estimator, kind: str, classification: bool):
            super().__init__()
            self.network, self.kind, self.classification = estimator.model_, kind, classification
            self.network.cpu()
            if kind == "images":
                self.register_buffer("mean", _tensor(estimator.mean_))
                self.register_buffer("std", _tensor(estimator.std_))
            elif kind == "series":
                self.register_buffer("mean", _tensor(estimator.channel_mean_))
                self.register_buffer("scale", _tensor(estimator.channel_scale_))
            if not classification:
                self.register_buffer("y_mean", _tensor([estimator.y_mean_]))
                self.register_buffer("y_scale", _tensor([estimator.y_scale_]))

        def forward(self, x):
            if self.kind == "images":
                x = ((x - self.mean) / self.std).permute(0, 3, 1, 2)
            elif self.kind == "series":
                x = self._series(x)
            out = self.network(x)
            if self.classification:
                return torch.softmax(out, dim=1)
            return out[:, :1] * self.y_scale + self.y_mean

        def _series(self, x):
            """trainforge.data.sequences.network_input: scaled steps, 0 on padding, and the
            mask as a last channel."""
            steps = torch.arange(1, x.shape[1] + 1, dtype=x.dtype)
            observed = (~torch.isnan(x)).to(x.dtype).amax(dim=2)  # a value in any channel
            length = (observed * steps).amax(dim=1, keepdim=True)
            inside = (steps[None, :] <= length).unsqueeze(2)
            scaled = torch.where(inside, (x - self.mean) / self.scale, torch.zeros_like(x))
            return torch.cat([scaled, inside.to(x.dtype)], dim=2)

    return Wrapped


def _tensor(values):
    import torch

    return torch.tensor(np.asarray(values, dtype=np.float32))


@contextlib.contextmanager
def _native_stderr_dropped():
    """The exporter's C++ warnings (``prim::PackPadded`` shape inference, one per RNN) go to
    file descriptor 2 past Python's warnings: dropped while tracing."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
