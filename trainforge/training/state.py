"""Everything needed to continue a loop bit for bit, as tensors plus JSON (no pickle).

Captured: model weights, optimizer state, the float16 gradient scaler, the loop's counters, row
order and running sums, history, the RNG states of Python, NumPy and torch (CPU, CUDA, and the
loop's own generator), and every callback's state.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from trainforge.errors import CheckpointError, CheckpointMismatch


def capture(loop, identity: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """The loop's full state. ``identity`` says which model and spec it belongs to."""
    tensors = {f"model.{k}": v for k, v in loop.model.state_dict().items()}
    optim_tensors, optim_state = _optimizer(loop.optimizer)
    tensors.update(optim_tensors)
    tensors.update(_rng_tensors(loop.generator))
    tensors["loop.order"] = loop.order if loop.order is not None else torch.empty(0)
    tensors["loop.loss_sum"] = loop.loss_sum if loop.loss_sum is not None else torch.zeros(())
    state = {
        "identity": identity,
        "loop": {
            "epoch": loop.epoch,
            "batch": loop.batch,
            "step": loop.step,
            "rows": loop.rows,
            "history": loop.history,
            "stop": loop.stop,
        },
        "optimizer": optim_state,
        "scaler": loop.scaler.state_dict() if loop.scaler is not None else None,
        "rng": {"python": _python_rng(), "numpy": _numpy_rng()},
        "callbacks": {},
    }
    for callback in loop.callbacks:
        meta, extra = callback.state_dict()
        state["callbacks"][callback.name] = meta
        tensors.update({f"callbacks.{callback.name}.{k}": v for k, v in extra.items()})
    return tensors, state


def restore(loop, tensors: dict[str, torch.Tensor], state: dict, identity: dict) -> None:
    """Put a captured state back into a freshly built loop of the same model and spec."""
    differs = sorted(
        k
        for k in identity.keys() | state["identity"].keys()
        if identity.get(k) != state["identity"].get(k)
    )
    if differs:
        shown = "; ".join(
            f"{k}: checkpoint {state['identity'].get(k)!r}, now {identity.get(k)!r}"
            for k in differs[:3]
        )
        raise CheckpointMismatch(f"the checkpoint belongs to a different model or spec ({shown})")
    loop.model.load_state_dict(_prefixed(tensors, "model."))
    _load_optimizer(loop.optimizer, tensors, state["optimizer"])
    if state.get("scaler"):
        device = next(loop.model.parameters()).device
        loop.scaler = torch.amp.GradScaler(device.type)
        loop.scaler.load_state_dict(state["scaler"])
    counters = state["loop"]
    loop.epoch, loop.batch, loop.step = counters["epoch"], counters["batch"], counters["step"]
    loop.rows, loop.history, loop.stop = counters["rows"], counters["history"], counters["stop"]
    device = next(loop.model.parameters()).device
    order = tensors["loop.order"]
    if order.numel() and not torch.equal(
        torch.sort(order.flatten()).values, torch.arange(len(order))
    ):
        raise CheckpointError("the checkpoint's row order is not a permutation of the rows")
    loop.order = order.to(device) if order.numel() else None
    loss_sum = tensors["loop.loss_sum"]
    if loss_sum.dim() != 0:
        raise CheckpointError(
            f"the checkpoint's running loss has shape {tuple(loss_sum.shape)}, not one number"
        )
    loop.loss_sum = loss_sum.to(device, torch.float64)  # the loop sums in float64
    for callback in loop.callbacks:
        callback.load_state_dict(
            state["callbacks"].get(callback.name, {}),
            _prefixed(tensors, f"callbacks.{callback.name}."),
        )
    _set_rng(loop.generator, tensors, state["rng"])


def _prefixed(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer(optimizer) -> tuple[dict, dict]:
    full = optimizer.state_dict()
    tensors, plain = {}, {}
    for index, values in full["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    indices = sorted(full["state"])
    return tensors, {"param_groups": full["param_groups"], "plain": plain, "indices": indices}


def _load_optimizer(optimizer, tensors: dict, state: dict) -> None:
    restored = {}
    for index in state["indices"]:
        values = dict(state["plain"].get(str(index), {}))
        values.update(_prefixed(tensors, f"optimizer.{index}."))
        restored[index] = values
    params = [p for group in optimizer.param_groups for p in group["params"]]
    _check_optimizer_state(restored, params, _NEEDS.get(type(optimizer).__name__, set()))
    optimizer.load_state_dict({"state": restored, "param_groups": state["param_groups"]})


# what each optimizer's step reads from a parameter's state, once it has stepped
_NEEDS = {"Adam": {"step", "exp_avg", "exp_avg_sq"}, "AdamW": {"step", "exp_avg", "exp_avg_sq"}}


def _check_optimizer_state(restored: dict, params: list, needs: set) -> None:
    """Refuse optimizer state that would fail or misbehave at the next step: every parameter's
    state has the same entries, each buffer has its parameter's shape, a step count is one
    number. (torch loads such state without a word and fails later, mid-training.)"""
    keys = {frozenset(values) for values in restored.values()}
    if len(keys) > 1:
        raise CheckpointError("the checkpoint's optimizer state differs between parameters")
    if keys and next(iter(keys)) and not needs <= next(iter(keys)):
        missing = ", ".join(sorted(needs - next(iter(keys))))
        raise CheckpointError(f"the checkpoint's optimizer state lacks {missing}")
    for index, values in restored.items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            raise CheckpointError(f"the checkpoint's optimizer state names parameter {index!r}")
        for key, value in values.items():
            if not torch.is_tensor(value):
                continue
            expected = () if key == "step" else tuple(params[index].shape)
            if tuple(value.shape) != expected and not (key == "step" and value.numel() == 1):
                raise CheckpointError(
                    f"the checkpoint's optimizer {key} for parameter {index} has shape "
                    f"{tuple(value.shape)}, not {expected}"
                )


def _rng_tensors(generator: torch.Generator) -> dict:
    tensors = {"rng.torch": torch.get_rng_state(), "rng.loop": generator.get_state()}
    if torch.cuda.is_available():
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = value
    return tensors


def _python_rng() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _numpy_rng() -> list:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(position), int(has_gauss), float(cached)]


def _set_rng(generator: torch.Generator, tensors: dict, rng: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.loop"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
