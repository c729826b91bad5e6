"""Warnings a careful practitioner would give while models train.

The watchdog is an observer: it reads each epoch's metrics (or a finished candidate's whole
history, for models that report their rounds only after fitting) and the finished candidates'
scores, and says so once per candidate and kind when something looks wrong:

- overfitting: validation loss climbing away from its best while training loss keeps falling;
- a stall: no improvement in the validation loss for many epochs;
- divergence: a training loss that rises epoch after epoch (or becomes NaN), usually a learning
  rate that is too high;
- a model no better than the baseline on the primary metric.
"""

from __future__ import annotations

import math
from typing import Callable

OVERFIT_RISE = 0.10  # validation loss this far (relative) above its best
OVERFIT_EPOCHS = 3  # ...at least this many epochs after the best
STALL_EPOCHS = 10  # or a tenth of the epoch budget, whichever is larger
DIVERGE_RATIO = 1.5  # training loss this many times its lowest value, and still rising
# ...and it has given back this share of what it had learned (first value minus the lowest): a
# near-perfect fit whose loss drifts from 0.005 to 0.008 is not diverging; one back at 1.2 is
DIVERGE_SHARE = 0.1


class Watchdog:
    """Checks training as it goes and sends each warning to ``notify`` (and keeps it).

    Args:
        notify: where warnings go, usually the observers' ``notice``.
    """

    def __init__(self, notify: Callable[[str], None]):
        self.notify = notify
        self.raised: list[str] = []
        self._histories: dict[str, list[dict]] = {}  # the current fit's epochs
        self._epochs: dict[str, int] = {}  # the last epoch number seen
        self._warned: set[tuple[str, str]] = set()
        self._baseline: dict[str, float] | None = None
        self._scores: list[tuple[str, dict]] = []

    def candidate_started(self, index: int, total: int, name: str) -> None:
        self._histories[name] = []
        self._epochs.pop(name, None)

    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        history = self._histories.setdefault(name, [])
        if epoch <= self._epochs.get(name, 0):  # a new fit began: a bagged candidate's next fold
            history.clear()
        self._epochs[name] = epoch
        history.append(dict(metrics))
        self._check_history(name, history, total)

    def candidate_finished(self, index: int, total: int, result) -> None:
        if result.history and not self._histories.get(result.name):
            self._check_history(result.name, result.history, len(result.history))
        error = result.error or ""
        if result.status != "ok" and "loss became" in error:
            rate = (result.settings or {}).get("learning_rate")
            shown = f" (learning_rate {rate})" if rate is not None else ""
            self._warn(
                result.name,
                "diverged",
                f"{result.name}: the training loss diverged to a non-finite value; lower the "
                f"learning rate{shown}",
            )
        if result.status == "ok" and result.metrics:
            self._check_baseline(result)

    # -- checks ---------------------------------------------------------------------------

    def _check_history(self, name: str, history: list[dict], total: int) -> None:
        train_key, valid_key = _loss_keys(history[-1])
        if valid_key:
            self._check_validation(name, history, train_key, valid_key, total)
        if train_key:
            self._check_divergence(name, history, train_key)

    def _check_validation(self, name, history, train_key, valid_key, total) -> None:
        values = [_num(h.get(valid_key)) for h in history]
        finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
        if not finite:
            return
        best, at = min(finite)
        now, since = values[-1], len(values) - 1 - at
        if train_key and since >= OVERFIT_EPOCHS and now > best + OVERFIT_RISE * abs(best):
            train_then, train_now = _num(history[at][train_key]), _num(history[-1][train_key])
            if train_now < train_then:
                self._warn(
                    name,
                    "overfitting",
                    f"{name}: {valid_key} rose {100 * (now - best) / abs(best or 1):.0f}% above "
                    f"its best (epoch {at + 1}) while {train_key} kept falling "
                    f"({train_then:.4f} -> {train_now:.4f}): overfitting; the best epoch is "
                    "kept, and more regularisation (dropout, weight decay) may help",
                )
        stall = max(STALL_EPOCHS, total // 10)
        if since >= stall:
            self._warn(
                name,
                "stalled",
                f"{name}: no improvement in {valid_key} for {since} epochs (best {best:.4f} "
                f"at epoch {at + 1})",
            )

    def _check_divergence(self, name: str, history: list[dict], key: str) -> None:
        losses = [_num(h.get(key)) for h in history]
        if len(losses) < 3 or not all(math.isfinite(v) for v in losses[-3:]):
            return
        finite = [v for v in losses if math.isfinite(v)]
        lowest = min(finite)
        rising = losses[-3] < losses[-2] < losses[-1]
        given_back, learned = losses[-1] - lowest, finite[0] - lowest
        if rising and losses[-1] > DIVERGE_RATIO * lowest and given_back > DIVERGE_SHARE * learned:
            self._warn(
                name,
                "diverging",
                f"{name}: the training {key} is rising ({lowest:.4f} at best, "
                f"{losses[-1]:.4f} now): the learning rate is probably too high; lower it",
            )

    def _check_baseline(self, result) -> None:
        from trainforge.metrics import METRICS
        from trainforge.models.registry import is_baseline

        scores = {k: v for k, v in result.metrics.items() if k in METRICS and math.isfinite(v)}
        if not scores or next(iter(result.metrics)) not in scores:
            return
        if is_baseline(result.family):
            self._baseline = scores
            for name, earlier in self._scores:
                self._compare(name, earlier)
        else:
            self._scores.append((result.name, scores))
            if self._baseline:
                self._compare(result.name, scores)

    def _compare(self, name: str, scores: dict) -> None:
        """Warn when a candidate does no better than the baseline on the primary metric: as
        having learned nothing when a label or ranking metric agrees, as giving overconfident
        probabilities when only a probability metric (log loss) is worse."""
        from trainforge.metrics import METRICS

        metric = next(iter(scores))
        base = self._baseline.get(metric)
        if base is None or _better(metric, scores[metric], base):
            return
        told = f"{name}: {metric} {scores[metric]:.4f} is no better than the baseline's {base:.4f}"
        if METRICS[metric].needs_proba and metric != "roc_auc":
            for other in ("roc_auc", "balanced_accuracy", "accuracy", "r2"):
                if other in scores and other in self._baseline:
                    if _better(other, scores[other], self._baseline[other]):
                        self._warn(
                            name,
                            "baseline",
                            f"{told}, though its {other} {scores[other]:.4f} beats the "
                            f"baseline's {self._baseline[other]:.4f}: its probabilities are "
                            "overconfident (regularise it, or calibrate it)",
                        )
                        return
                    break
        self._warn(name, "baseline", f"{told}; it learned nothing useful from the features")

    def _warn(self, name: str, kind: str, message: str) -> None:
        if (name, kind) in self._warned:
            return
        self._warned.add((name, kind))
        self.raised.append(message)
        self.notify(message)


def _loss_keys(logs: dict) -> tuple[str | None, str | None]:
    """The training and validation loss names in a history entry (``loss``/``val_loss``, or a
    boosting library's ``<metric>``/``val_<metric>``)."""
    if "val_loss" in logs:
        return ("loss" if "loss" in logs else None), "val_loss"
    for key in logs:
        if key.startswith("val_") and not any(k in key for k in ("acc", "auc", "r2", "f1")):
            train = key.removeprefix("val_")
            return (train if train in logs else None), key
    return ("loss" if "loss" in logs else None), None


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _better(metric: str, score: float, than: float) -> bool:
    from trainforge.metrics import METRICS

    return METRICS[metric].better(score, than)
