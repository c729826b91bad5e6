"""MultiRocket features of series, in numpy: MiniRocket's kernels (Dempster et al. 2021) over
the series and its first differences, four pooled values per kernel and bias (Tan et al. 2022).

Every kernel has length 9 with weights -1, except three of them at 2: its 84 choices of three
positions, at dilations spread on a log scale up to the series' length. A kernel's output at
step t is the dilated convolution with zero padding; each (kernel, dilation) gets biases at
quantiles of its output on a random training series, and each bias gives four features of the
output minus the bias:

- PPV, the share of steps where it is positive;
- MPV, its mean where positive (0 if nowhere);
- MIPV, the mean of those steps' positions, over the series' length (-1 if none);
- LSPV, the longest run of positive steps, over the series' length.

Half the (kernel, dilation) pairs pool over every step, the others only where the kernel lies
inside the series (MiniRocket's alternation). Several channels: each pair sums its convolution
over a random subset of channels (MiniRocket's multivariate version). Series of unequal length
(NaN after their end) are pooled over their own steps only.

The fitted parameters are plain arrays (``Kernels``), saved as such (trainforge.models.rocket).
Written here rather than taken from aeon 1.6: aeon requires pandas < 3.1 and numba < 0.64,
which this project's pins exclude (docs/sequences.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

KERNELS = np.array(list(combinations(range(9), 3)), dtype=np.int64)  # (84, 3)
MAX_DILATIONS = 32  # per kernel, as in MiniRocket
POOLED = 4  # PPV, MPV, MIPV, LSPV
ROWS_PER_CHUNK = 256  # series transformed at once (bounds the (rows, steps, biases) arrays)
_PHI = (np.sqrt(5.0) + 1.0) / 2.0


@dataclass
class Kernels:
    """The fitted parameters of one representation (the series, or its differences).

    Attributes:
        dilations: ``(D,)`` dilations, increasing.
        biases_per_pair: ``(D,)`` biases of each (kernel, dilation) pair at that dilation.
        biases: ``(84 * sum(biases_per_pair),)`` in order dilation, kernel, bias.
        channel_counts: ``(D * 84,)`` channels each pair sums over.
        channels: ``(sum(channel_counts),)`` those channels, pair after pair.
    """

    dilations: np.ndarray
    biases_per_pair: np.ndarray
    biases: np.ndarray
    channel_counts: np.ndarray
    channels: np.ndarray

    @property
    def n_features(self) -> int:
        return len(self.biases) * POOLED

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{name}": getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str, n_channels: int, steps: int) -> Kernels:
        """Rebuild from ``arrays`` (a saved file's) for series of ``steps`` steps, refusing
        shapes and values that do not fit together (a dilation past what ``fit`` gives such
        series would make a crafted file allocate without bound).

        Raises:
            ValueError: naming the first inconsistency.
        """
        kernels = cls(*(np.asarray(arrays[f"{prefix}.{name}"]) for name in _FIELDS))
        d = len(kernels.dilations)
        ints = (kernels.dilations, kernels.biases_per_pair, kernels.channel_counts)
        if any(a.ndim != 1 or a.dtype.kind not in "iu" for a in (*ints, kernels.channels)):
            raise ValueError(f"{prefix}: dilations, counts and channels must be integer vectors")
        if not 1 <= d <= MAX_DILATIONS or len(kernels.biases_per_pair) != d:
            raise ValueError(f"{prefix}: 1 to {MAX_DILATIONS} dilations, one bias count each")
        if kernels.dilations.min() < 1 or kernels.biases_per_pair.min() < 1:
            raise ValueError(f"{prefix}: dilations and bias counts must be positive")
        if kernels.dilations.max() > max((steps - 1) // 8, 1):
            raise ValueError(f"{prefix}: a dilation is longer than series of {steps} steps allow")
        if kernels.biases.shape != (len(KERNELS) * int(kernels.biases_per_pair.sum()),):
            raise ValueError(f"{prefix}: the bias count does not match the dilations'")
        counts = kernels.channel_counts
        if counts.shape != (d * len(KERNELS),) or counts.min() < 1 or counts.max() > n_channels:
            raise ValueError(f"{prefix}: each pair needs 1 to {n_channels} channels")
        if len(kernels.channels) != counts.sum() or kernels.channels.max() >= n_channels:
            raise ValueError(f"{prefix}: channel indices do not match the series' channels")
        if kernels.channels.min() < 0:
            raise ValueError(f"{prefix}: channel indices must not be negative")
        return kernels


_FIELDS = ("dilations", "biases_per_pair", "biases", "channel_counts", "channels")


def fit(series: np.ndarray, lengths: np.ndarray, n_features: int, seed: int) -> list[Kernels]:
    """Kernels for the series ``(N, T, C)`` (NaN after each series' ``lengths``) and for their
    first differences, about ``n_features`` features in all."""
    rng = np.random.RandomState(seed)
    per_representation = max(n_features // (2 * POOLED), len(KERNELS))
    return [
        _fit_one(values, steps, per_representation, rng)
        for values, steps in _representations(series, lengths)
    ]


def transform(series: np.ndarray, lengths: np.ndarray, fitted: list[Kernels]) -> np.ndarray:
    """``(N, features)`` float32 features of the series (the order ``fit`` fixed)."""
    parts = []
    for (values, steps), kernels in zip(_representations(series, lengths), fitted, strict=True):
        chunks = [
            _features(values[i : i + ROWS_PER_CHUNK], steps[i : i + ROWS_PER_CHUNK], kernels)
            for i in range(0, len(values), ROWS_PER_CHUNK)
        ]
        parts.append(np.concatenate(chunks) if chunks else np.zeros((0, kernels.n_features)))
    return np.concatenate(parts, axis=1).astype(np.float32)


def _representations(series: np.ndarray, lengths: np.ndarray):
    """The series with 0 after their ends, and their first differences (one step shorter)."""
    values = np.nan_to_num(np.asarray(series, dtype=np.float32), nan=0.0)
    lengths = np.asarray(lengths, dtype=np.int64)
    diffs = np.diff(values, axis=1) if values.shape[1] > 1 else np.zeros_like(values)
    inside = np.arange(diffs.shape[1])[None, :] < (lengths - 1)[:, None]
    diffs = np.where(inside[:, :, None], diffs, 0.0).astype(np.float32)
    return [(values, lengths), (diffs, np.maximum(lengths - 1, 1))]


def _dilations(length: int, per_kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """Dilations on a log scale up to where a kernel spans the series, and how many biases
    each gets (``per_kernel`` in all)."""
    count = min(per_kernel, MAX_DILATIONS)
    top = max(np.log2(max(length - 1, 1) / 8), 0.0)
    raw = np.floor(np.logspace(0, top, count, base=2)).astype(np.int64)
    dilations, repeats = np.unique(raw, return_counts=True)
    biases = (repeats * per_kernel // count).astype(np.int64)
    for i in range(per_kernel - int(biases.sum())):  # the remainder, one each from the start
        biases[i % len(biases)] += 1
    return dilations, np.maximum(biases, 1)


def _fit_one(values: np.ndarray, lengths: np.ndarray, per_representation: int, rng) -> Kernels:
    n, steps, n_channels = values.shape
    dilations, per_pair = _dilations(steps, per_representation // len(KERNELS))
    quantiles = (np.arange(1, len(KERNELS) * int(per_pair.sum()) + 1) * _PHI) % 1
    most = min(n_channels, 9)
    counts = np.floor(2 ** rng.uniform(0, np.log2(most + 1), len(dilations) * len(KERNELS)))
    counts = counts.astype(np.int64).clip(1, n_channels)
    channels = np.concatenate([rng.choice(n_channels, c, replace=False) for c in counts])
    kernels = Kernels(dilations, per_pair, np.zeros(len(quantiles)), counts, channels)
    examples = rng.randint(n, size=len(dilations) * len(KERNELS))
    biases, pair = [], 0
    for dilation, per in zip(dilations, per_pair):
        for kernel in range(len(KERNELS)):
            row = examples[pair]
            base, shifted = _shifted(values[row : row + 1, : lengths[row]], int(dilation))
            output = _output(base, shifted, kernel, _pair_channels(kernels, pair))[0]
            start = len(biases)
            biases.extend(np.quantile(output, quantiles[start : start + per]))
            pair += 1
    kernels.biases = np.asarray(biases, dtype=np.float32)
    return kernels


def _pair_channels(kernels: Kernels, pair: int) -> np.ndarray:
    end = int(kernels.channel_counts[: pair + 1].sum())
    return kernels.channels[end - kernels.channel_counts[pair] : end]


def _shifted(values: np.ndarray, dilation: int) -> tuple[np.ndarray, np.ndarray]:
    """The nine dilated shifts of ``values`` (zero-padded), ``(9, N, T, C)``, and minus their
    sum: every kernel's output is that sum plus three times its three shifts."""
    steps = values.shape[1]
    pad = 4 * dilation
    padded = np.pad(values, ((0, 0), (pad, pad), (0, 0)))
    shifted = np.stack([padded[:, j * dilation : j * dilation + steps] for j in range(9)])
    return -shifted.sum(axis=0), shifted


def _output(base, shifted, kernel: int, channels) -> np.ndarray:
    """``(N, T)``: the kernel's convolution, summed over ``channels``."""
    a, b, c = KERNELS[kernel]
    return (base + 3 * (shifted[a] + shifted[b] + shifted[c]))[:, :, channels].sum(axis=2)


def _features(values: np.ndarray, lengths: np.ndarray, kernels: Kernels) -> np.ndarray:
    n, steps, _ = values.shape
    out = np.zeros((n, kernels.n_features), dtype=np.float32)
    positions = np.arange(steps)
    pair, column = 0, 0
    for index, (dilation, per) in enumerate(zip(kernels.dilations, kernels.biases_per_pair)):
        pad = 4 * int(dilation)
        base, shifted = _shifted(values, int(dilation))
        for kernel in range(len(KERNELS)):
            output = _output(base, shifted, kernel, _pair_channels(kernels, pair))
            start, end = (0, lengths) if (kernel + index) % 2 == 0 else (pad, lengths - pad)
            if np.any(end <= start):  # the kernel never lies inside a short series
                start, end = 0, lengths
            biases = kernels.biases[column // POOLED : column // POOLED + per]
            pooled = _pooled(output, biases, positions, start, end)
            out[:, column : column + POOLED * per] = pooled
            pair, column = pair + 1, column + POOLED * per
    return out


def _pooled(output, biases, positions, start, end) -> np.ndarray:
    """``(N, 4 * biases)``: PPV, MPV, MIPV and LSPV of ``output - bias`` for each bias, over
    the steps from ``start`` to ``end`` (scalars or one per row). Arrays are laid out
    ``(N, biases, T)`` so that every reduction runs over contiguous steps."""
    start = np.broadcast_to(np.asarray(start), (len(output),))[:, None, None]
    end = np.broadcast_to(np.asarray(end), (len(output),))[:, None, None]
    steps = positions[None, None, :]
    span = (end - start)[:, :, 0].astype(np.float32)  # (N, 1)
    above = output[:, None, :] - biases[None, :, None]  # (N, B, T)
    positive = (above > 0) & (steps >= start) & (steps < end)
    count = np.count_nonzero(positive, axis=2).astype(np.float32)  # (N, B)
    ppv = count / span
    mpv = (above * positive).sum(axis=2) / np.maximum(count, 1)
    where = (positive * (steps - start).astype(np.float32)).sum(axis=2)
    mipv = np.where(count > 0, where / np.maximum(count, 1) / span, -1.0)
    # the last step at or before each t that was not positive: t minus it is the run at t
    last_break = np.maximum.accumulate(np.where(positive, -1, steps), axis=2)
    lspv = (steps - last_break).max(axis=2) / span
    return np.stack([ppv, mpv, mipv, lspv], axis=2).reshape(len(output), -1)
