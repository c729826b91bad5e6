"""The training engine's building blocks: losses, optimizers and learning-rate schedules."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainforge.errors import SpecError
from trainforge.training.losses import LOSSES, build_loss, default_loss
from trainforge.training.optim import OPTIMIZERS, build_optimizer, l1_penalty
from trainforge.training.schedules import (
    SCHEDULES,
    build_schedule,
    load_schedule_state,
    schedule_state,
    warmup_cosine_factor,
)

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [-1.0, 4.0, 0.0], [0.3, 0.3, 0.3]])
CLASSES = torch.tensor([0, 2, 2, 1])
WEIGHTS = torch.tensor([1.0, 2.0, 0.5])


# Losses ------------------------------------------------------------------------------------


def test_cross_entropy_matches_torch_with_weights_and_smoothing():
    loss = build_loss("cross_entropy", class_weight=WEIGHTS, label_smoothing=0.1)
    expected = F.cross_entropy(LOGITS, CLASSES, weight=WEIGHTS, label_smoothing=0.1)
    assert loss(LOGITS, CLASSES).item() == pytest.approx(expected.item(), rel=1e-6)
    plain = build_loss("cross_entropy")(LOGITS, CLASSES).item()
    assert plain == pytest.approx(F.cross_entropy(LOGITS, CLASSES).item(), rel=1e-6)
    smoothed = build_loss("cross_entropy", label_smoothing=0.1)(LOGITS, CLASSES).item()
    assert abs(smoothed - plain) > 1e-3


def test_focal_with_gamma_zero_is_cross_entropy():
    focal = build_loss("focal", focal_gamma=0.0)
    assert focal(LOGITS, CLASSES).item() == pytest.approx(
        F.cross_entropy(LOGITS, CLASSES).item(), rel=1e-6
    )


def test_focal_hand_computed_with_alpha():
    focal = build_loss("focal", focal_gamma=2.0, class_weight=WEIGHTS)
    p = F.softmax(LOGITS, dim=1)[torch.arange(4), CLASSES]
    expected = (-WEIGHTS[CLASSES] * (1 - p) ** 2 * torch.log(p)).mean()
    assert focal(LOGITS, CLASSES).item() == pytest.approx(expected.item(), rel=1e-5)
    # Focusing shrinks the loss of confident, correct predictions the most.
    assert (
        focal(LOGITS, CLASSES).item() < build_loss("focal", focal_gamma=0.0)(LOGITS, CLASSES).item()
    )


def test_focal_is_finite_on_extreme_logits():
    logits = torch.tensor([[200.0, -200.0], [-200.0, 200.0]], requires_grad=True)
    loss = build_loss("focal")(logits, torch.tensor([1, 1]))
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(200.0, rel=1e-4)
    assert torch.isfinite(logits.grad).all()


def test_binary_cross_entropy_pos_weight_is_w1_over_w0():
    logits = torch.tensor([[0.5], [-1.0], [2.0], [0.0]])
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0])
    loss = build_loss("binary_cross_entropy", class_weight=torch.tensor([2.0, 6.0]))
    expected = F.binary_cross_entropy_with_logits(
        logits.squeeze(1), targets, pos_weight=torch.tensor([3.0])
    )
    assert loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)
    # Up to the factor w0, it is per-sample weighting by class.
    per_row = F.binary_cross_entropy_with_logits(logits.squeeze(1), targets, reduction="none")
    weighted = (per_row * torch.where(targets == 1, 6.0, 2.0)).mean() / 2.0
    assert loss(logits, targets).item() == pytest.approx(weighted.item(), rel=1e-6)


def test_binary_cross_entropy_smoothing_moves_targets_to_the_middle():
    logits, targets = torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.0])
    loss = build_loss("binary_cross_entropy", label_smoothing=0.2)
    expected = F.binary_cross_entropy_with_logits(logits, torch.tensor([0.9, 0.1]))
    assert loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_regression_losses_hand_computed_and_column_predictions():
    predictions = torch.tensor([[1.0], [2.0], [5.0]])
    targets = torch.tensor([1.5, 2.0, 2.0])  # errors 0.5, 0, 3
    assert build_loss("mse")(predictions, targets).item() == pytest.approx((0.25 + 9) / 3)
    assert build_loss("mae")(predictions, targets).item() == pytest.approx(3.5 / 3)
    huber = build_loss("huber", huber_delta=1.0)(predictions, targets).item()
    assert huber == pytest.approx((0.5 * 0.25 + 0 + (3 - 0.5)) / 3)
    assert build_loss("mse")(predictions.squeeze(1), targets[:, None]).item() == pytest.approx(
        (0.25 + 9) / 3
    )


def test_mismatched_shapes_raise_instead_of_broadcasting():
    with pytest.raises(ValueError, match="differ in shape"):
        build_loss("mse")(torch.zeros(4, 2), torch.zeros(4))


def test_unknown_loss_suggests_the_closest():
    with pytest.raises(SpecError, match=r"unknown loss 'focall'; did you mean 'focal'\?"):
        build_loss("focall")


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("mse", {"class_weight": torch.ones(2)}, "takes no class weights"),
        ("focal", {"label_smoothing": 0.1}, "takes no label smoothing"),
        ("cross_entropy", {"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ("huber", {"huber_delta": 0.0}, "huber_delta must be positive"),
        ("binary_cross_entropy", {"class_weight": torch.ones(3)}, "negative, positive"),
    ],
)
def test_unusable_loss_settings_are_spec_errors(name, settings, message):
    with pytest.raises(SpecError, match=message):
        build_loss(name, **settings)


def test_default_loss_per_task():
    assert [default_loss(t) for t in ("binary", "multiclass", "regression")] == [
        "cross_entropy",
        "cross_entropy",
        "mse",
    ]
    assert set(LOSSES) == {"cross_entropy", "binary_cross_entropy", "mse", "mae", "huber", "focal"}
    with pytest.raises(SpecError, match="did you mean 'regression'"):
        default_loss("regresion")


# Optimizers --------------------------------------------------------------------------------


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))


def test_l1_penalty_sums_weight_matrices_only():
    model = _tiny_model()
    hand = model[0].weight.abs().sum() + model[2].weight.abs().sum()
    assert l1_penalty(model, 0.01).item() == pytest.approx(0.01 * hand.item(), rel=1e-6)
    with_bias = sum(p.abs().sum() for p in model.parameters()).item()
    assert l1_penalty(model, 1.0).item() != pytest.approx(with_bias)


def test_l1_penalty_zero_strength_builds_no_graph():
    penalty = l1_penalty(_tiny_model(), 0.0)
    assert penalty.item() == 0.0 and penalty.grad_fn is None


def test_sgd_settings_reach_torch():
    params = list(_tiny_model().parameters())
    sgd = build_optimizer("sgd", params, lr=0.1, momentum=0.8, nesterov=True, weight_decay=1e-3)
    group = sgd.param_groups[0]
    assert isinstance(sgd, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.1,
        0.8,
        True,
        1e-3,
    )
    assert group["fused"]  # fused kernels are used on the CPU too


def test_adamw_weight_decay_is_decoupled_and_adam_is_l2():
    def one_step(name: str) -> float:
        weight = nn.Parameter(torch.ones(1))
        optimizer = build_optimizer(name, [weight], lr=0.1, weight_decay=0.1)
        weight.grad = torch.zeros(1)
        optimizer.step()
        return weight.item()

    assert one_step("adamw") == pytest.approx(1 - 0.1 * 0.1, abs=1e-7)  # shrink by lr * wd
    assert one_step("adam") == pytest.approx(1 - 0.1, abs=1e-5)  # L2 gradient, normalised
    params = [nn.Parameter(torch.ones(1))]
    group = build_optimizer("adamw", params, lr=0.1, weight_decay=0.1).param_groups[0]
    assert group["weight_decay"] == 0.1


def test_every_optimizer_builds_from_a_generator_of_groups():
    model = _tiny_model()
    for name in OPTIMIZERS:
        groups = [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 1}]
        optimizer = build_optimizer(name, groups, lr=0.01)
        assert [len(g["params"]) for g in optimizer.param_groups] == [2, 2]


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("adamm", {}, r"unknown optimizer 'adamm'; did you mean 'adam' or 'adamw'\?"),
        ("adam", {"nesterov": True}, "nesterov applies to sgd only"),
        ("sgd", {"nesterov": True, "momentum": 0.0}, "nesterov needs a positive momentum"),
        ("rmsprop", {"fused": True}, "has no fused kernel"),
        ("sgd", {"lr": 0.0}, "lr must be positive"),
    ],
)
def test_bad_optimizer_settings_are_spec_errors(name, settings, message):
    settings = {"lr": 0.1, **settings}
    with pytest.raises(SpecError, match=message):
        build_optimizer(name, [nn.Parameter(torch.ones(1))], **settings)


def test_fused_is_chosen_where_the_optimizer_has_a_kernel():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    weight = nn.Parameter(torch.ones(2, device=device))
    assert build_optimizer("adamw", [weight], lr=0.1).param_groups[0]["fused"]
    assert not build_optimizer("adamw", [weight], lr=0.1, fused=False).param_groups[0]["fused"]
    assert not build_optimizer("rmsprop", [weight], lr=0.1).defaults.get("fused")


# Schedules ---------------------------------------------------------------------------------


def _optimizer(name: str = "sgd", lr: float = 0.1) -> torch.optim.Optimizer:
    return build_optimizer(name, [nn.Parameter(torch.ones(2))], lr=lr)


def _lrs(schedule, steps: int, metrics=None) -> list[float]:
    """Learning rates after each of ``steps`` optimizer steps and schedule steps."""
    optimizer = schedule.scheduler.optimizer
    found = []
    for index in range(steps):
        optimizer.step()
        if schedule.interval == "plateau":
            schedule.scheduler.step(metrics[index])
        else:
            schedule.scheduler.step()
        found.append(optimizer.param_groups[0]["lr"])
    return found


def test_cosine_warms_up_linearly_then_decays_to_the_minimum():
    optimizer = _optimizer(lr=0.1)
    schedule = build_schedule(
        "cosine", optimizer, steps_per_epoch=10, max_epochs=10, min_lr_ratio=0.1
    )
    assert schedule.interval == "step"
    lrs = [optimizer.param_groups[0]["lr"], *_lrs(schedule, 99)]  # lr at steps 0..99
    assert lrs[0] == 0.0
    assert lrs[1:6] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])  # 5 warmup steps
    assert lrs[5] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))
    assert lrs[99] == pytest.approx(0.01, abs=1e-4)
    assert warmup_cosine_factor(100, warmup_steps=5, total_steps=100, min_lr_ratio=0.1) == 0.1


def test_onecycle_peaks_at_max_lr():
    optimizer = _optimizer(lr=0.01)
    schedule = build_schedule("onecycle", optimizer, steps_per_epoch=10, max_epochs=4, max_lr=0.5)
    lrs = [optimizer.param_groups[0]["lr"], *_lrs(schedule, 39)]
    assert lrs[0] == pytest.approx(0.5 / 25)
    assert max(lrs) == pytest.approx(0.5) and lrs.index(max(lrs)) == 11  # 0.3 * 40 - 1
    default_peak = build_schedule("onecycle", _optimizer(lr=0.01), steps_per_epoch=5, max_epochs=2)
    assert max(_lrs(default_peak, 10)) == pytest.approx(0.01)


def test_plateau_halves_the_lr_once_patience_bad_epochs_have_passed():
    optimizer = _optimizer(lr=0.1)
    schedule = build_schedule("plateau", optimizer, steps_per_epoch=1, max_epochs=10, patience=2)
    assert schedule.interval == "plateau"
    # Epoch 1 sets the baseline; epochs 2 and 3 are tolerated; the third bad epoch reduces.
    lrs = _lrs(schedule, 7, metrics=[1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6])
    assert lrs == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]


def test_epoch_schedules_use_their_defaults():
    step = build_schedule("step", _optimizer(lr=1.0), steps_per_epoch=3, max_epochs=20)
    assert step.interval == "epoch"
    assert _lrs(step, 11)[8:] == pytest.approx([1.0, 0.1, 0.1])
    multistep = build_schedule("multistep", _optimizer(lr=1.0), steps_per_epoch=3, max_epochs=70)
    lrs = _lrs(multistep, 60)  # lrs[i] is the lr for epoch i + 1
    assert [lrs[i] for i in (28, 29, 58, 59)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
    exponential = build_schedule("exponential", _optimizer(lr=1.0), steps_per_epoch=3, max_epochs=5)
    assert _lrs(exponential, 2) == pytest.approx([0.95, 0.95**2])
    assert build_schedule(None, _optimizer(), steps_per_epoch=1, max_epochs=1) is None
    assert build_schedule("constant", _optimizer(), steps_per_epoch=1, max_epochs=1) is None


ROUND_TRIP = {
    "step": {"step_size": 3, "gamma": 0.5},
    "multistep": {"milestones": [4, 9, 20], "gamma": 0.3},
    "exponential": {"gamma": 0.9},
    "cosine": {"warmup_fraction": 0.1, "min_lr_ratio": 0.05},
    "onecycle": {},
    "plateau": {"patience": 1},
}


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
@pytest.mark.parametrize("stop_at", [0, 7])
@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_json_round_trip_continues_bit_identically(name, stop_at, optimizer_name):
    metrics = [1.0 / (1 + (i // 3)) for i in range(80)]  # improves every third epoch

    def build():
        optimizer = _optimizer(optimizer_name, lr=0.1)
        return build_schedule(name, optimizer, steps_per_epoch=8, max_epochs=10, **ROUND_TRIP[name])

    original = build()
    _lrs(original, stop_at, metrics)
    saved = json.loads(json.dumps(schedule_state(original), allow_nan=True))
    resumed = build()
    load_schedule_state(resumed, saved)
    assert _settings(resumed) == _settings(original)
    expected = _lrs(original, 50, metrics[stop_at:])
    assert _lrs(resumed, 50, metrics[stop_at:]) == expected  # exact, not approximate
    assert len(set(expected)) > 1 or name == "plateau" and stop_at == 0


def _settings(schedule) -> list[dict]:
    groups = schedule.scheduler.optimizer.param_groups
    return [{k: v for k, v in group.items() if k != "params"} for group in groups]


def test_round_trip_state_keeps_infinity_as_json():
    schedule = build_schedule("plateau", _optimizer(), steps_per_epoch=1, max_epochs=1)
    text = json.dumps(schedule_state(schedule), allow_nan=True)
    assert '"best": Infinity' in text


def test_every_named_schedule_builds():
    for name in SCHEDULES:
        build_schedule(name, _optimizer(), steps_per_epoch=4, max_epochs=3)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("cosin", {}, r"unknown schedule 'cosin'; did you mean 'cosine'\?"),
        ("cosine", {"warmup": 0.1}, r"schedule 'cosine': unknown parameter 'warmup'"),
        ("step", {"gama": 0.5}, r"unknown parameter 'gama'; did you mean 'gamma'\?"),
        ("constant", {"gamma": 0.5}, r"unknown parameter 'gamma' \(known: none\)"),
        ("cosine", {"warmup_fraction": 1.0}, r"warmup_fraction must be in \[0, 1\)"),
        ("multistep", {"milestones": [5, 3]}, "milestones must be increasing"),
        ("plateau", {"mode": "up"}, "schedule 'plateau': mode up is unknown"),
    ],
)
def test_bad_schedule_names_and_parameters_are_spec_errors(name, params, message):
    with pytest.raises(SpecError, match=message):
        build_schedule(name, _optimizer(), steps_per_epoch=4, max_epochs=3, **params)


def test_steps_per_epoch_must_be_positive():
    with pytest.raises(SpecError, match="steps_per_epoch must be a positive whole number"):
        build_schedule("cosine", _optimizer(), steps_per_epoch=0, max_epochs=3)
