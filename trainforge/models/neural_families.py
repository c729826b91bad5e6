"""Neural families in the registry. Their estimators import torch only when built, so the
catalogue lists them on a classical-only install (where they are left out of the ladder)."""

from __future__ import annotations

from trainforge.models.classical import LINEAR
from trainforge.models.registry import BudgetRules, Family, Prep, Profile, register
from trainforge.search.hooks import LOOP_NOTE, loop_hooks
from trainforge.search.space import Choice, Float, Space

MLP_SPACE = Space(
    params=(
        Float("learning_rate", 1e-4, 1e-2, log=True),
        Choice(
            "hidden_sizes",
            {
                "128": (128,),
                "256-128": (256, 128),
                "512-256": (512, 256),
                "256-256-256": (256, 256, 256),
            },
        ),
        Float("dropout", 0.0, 0.5),
        Float("weight_decay", 1e-6, 1e-2, log=True),
        Choice("batch_size", [128, 256, 512]),
    ),
    hooks=loop_hooks,
    prunes=True,
    note=LOOP_NOTE,
)
# Loading torch and the first epochs take a good part of a shorter budget...
NEURAL_MIN_SECONDS = 300
# ...except on small tables, where the MLP's epochs are quick and it is often the model that
# adds most to the ensemble. There it trains right after the portfolio's first entry at any
# time limit: early enough that its share of the time left (FIT_SHARE) lets it converge. Car
# (1,296 rows), 60 s: test log loss 0.037 without it, 0.026 after the third entry (the MLP cut
# short: out-of-fold 0.169 alone), 0.018 after the first (benchmarks/RESULTS.md).
MLP_SMALL_ROWS = 10_000
MLP_SLOT = 1


def _mlp(profile: Profile) -> dict:
    # Larger batches on large tables: the same epochs in far fewer optimizer steps.
    return {"batch_size": 256 if profile.n_rows <= 100_000 else 1024}


register(
    Family(
        name="mlp",
        saves_itself=True,
        summary="Multi-layer perceptron on scaled, one-hot encoded features (PyTorch).",
        classes={
            "classification": "trainforge.models.neural.MLPClassifier",
            "regression": "trainforge.models.neural.MLPRegressor",
        },
        prep=LINEAR,
        initial=_mlp,
        initial_doc="hidden (256, 128), ReLU, dropout 0.1, AdamW lr 1e-3 weight decay 1e-4, "
        "batches of 256 (1024 past 100,000 rows), lr halved on a validation plateau, early "
        "stopping after 10 epochs on a 10% split, best weights restored; needs torch",
        ladder=90,
        sample_weight=False,
        requires=("torch",),
        space=MLP_SPACE,
        budget=BudgetRules(
            rank=90, min_seconds=NEURAL_MIN_SECONDS, small_rows=MLP_SMALL_ROWS, small_slot=MLP_SLOT
        ),
    )
)


def _builder(params: dict, path: str) -> None:
    """The builder's form, checked with the spec; whether it imports is checked when the run
    fits it (a spec check imports no code: `trainforge show` reads specs too)."""
    from trainforge.errors import SpecError
    from trainforge.models.external import BUILDER

    builder = params["builder"]
    if not isinstance(builder, str) or not BUILDER.match(builder):
        raise SpecError(
            f"{path}.builder: expected package.module:function (a function that returns an "
            f"nn.Module), got {builder!r}"
        )


register(
    Family(
        name="torch_module",
        saves_itself=True,
        summary="Your own torch module from a builder function, on the MLP's loop (PyTorch).",
        classes={
            "classification": "trainforge.models.torch_module.TorchModuleClassifier",
            "regression": "trainforge.models.torch_module.TorchModuleRegressor",
        },
        prep=LINEAR,
        initial=lambda profile: {},
        initial_doc="builder: package.module:function(n_inputs, n_outputs, **builder_args) "
        "returning an nn.Module; the MLP's training settings; never in the default ladder; "
        "needs torch",
        sample_weight=False,
        requires=("torch",),
        budget=BudgetRules(leave_out=True),
        required=("builder",),
        check=_builder,
    )
)


def _layers(params: dict, path: str) -> None:
    from trainforge.models import layers

    layers.check(params["layers"], f"{path}.layers")


def _net(profile: Profile) -> dict:
    if profile.input == "sequence":
        return {"channels": profile.channels}
    if profile.input == "image" and profile.image_shape:
        return {"image_shape": list(profile.image_shape)}
    return {}


NET = "trainforge.models.net."
register(
    Family(
        name="net",
        saves_itself=True,
        summary="A network written as a list of layers in the spec (dense, conv, recurrent, "
        "attention, ...) for tables, images, series or text (PyTorch).",
        classes={
            "classification": NET + "NetClassifier",
            "regression": NET + "NetRegressor",
            "image:classification": NET + "NetImageClassifier",
            "sequence:classification": NET + "NetSequenceClassifier",
            "sequence:regression": NET + "NetSequenceRegressor",
            "text:classification": NET + "NetSequenceClassifier",
            "text:regression": NET + "NetSequenceRegressor",
        },
        prep=LINEAR,
        preps={
            "image": Prep(scale=False, categorical="ordinal"),  # normalised per channel
            "sequence": Prep(scale=False),  # series scaled per channel, padding masked
            "text": Prep(scale=False),  # the texts themselves, for its tokenizer
        },
        initial=_net,
        initial_doc="layers: [{type: dense, units: 128, activation: relu}, {type: dropout, "
        "rate: 0.3}, ...] (dense, dropout, batch_norm, layer_norm, activation, residual, conv, "
        "pool, global_pool, flatten, embedding, recurrent, positions, attention), then the "
        "output layer; the training settings and input handling of the MLP (tables), CNN "
        "(images) or RNN (series, text); never in the default ladder; needs torch",
        sample_weight=False,
        requires=("torch",),
        inputs=("table", "text", "sequence"),
        budget=BudgetRules(leave_out=True),
        required=("layers",),
        check=_layers,
    )
)
