"""A second stacking layer (AutoGluon's "L2"): a bagged model trained on the original features
plus the out-of-fold predictions of the best first-layer candidates.

Under cross-validation every candidate's validation predictions are out-of-fold predictions
for every training row, so they can be features: for row i they come from models that never
saw row i. The second layer is bagged over the same folds, so its own out-of-fold predictions
score it like any candidate, and the final pick takes it only when it wins on that footing.
One leak remains, as in every stacked model trained this way: a second-layer fold model
learns from rows whose first-layer predictions came from models that saw the rows of its
validation fold. It is small (those predictions are averages over other folds), and the final
pick compares the layer's score with the others' on the same rows.

At prediction time the first-layer members predict the new rows, their outputs are added as
columns, and the second layer predicts from the widened rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from trainforge.candidates import Candidate, CandidateResult, fit_candidate
from trainforge.data.dataset import Dataset, Fold
from trainforge.data.schema import Column
from trainforge.ensemble import member_output, usable_members
from trainforge.model import StackedModel, stack_columns

NAME = "stack_lightgbm"
FAMILY = "lightgbm"  # strong, fast, and robust to a few dozen extra numeric columns
MEMBERS = 8  # the best this many first-layer results give the new columns
# Time limits from which a budgeted, bagged run adds the layer (and always with no time
# limit): on short budgets its fits cost more first-layer candidates than it tends to give.
MIN_SECONDS = 300


def build_layer2(results: list, ctx, model_of) -> CandidateResult | None:
    """The second-layer candidate, or None with fewer than two usable first-layer results.

    Args:
        model_of: a result -> its fitted (or saved) model, for prediction time.
    """
    from trainforge.models.registry import get_family

    dataset, primary = ctx.dataset, ctx.primary
    usable = usable_members(results, primary, dataset.task)[:MEMBERS]
    if len(usable) < 2 or any(r.valid.row is None for r in usable):
        return None
    outputs = {r.name: _aligned(r, dataset) for r in usable}
    widened = _widened(dataset, stack_columns(outputs, dataset.task))
    profile = replace(ctx.profile, n_columns=len(widened.schema.columns))
    candidate = Candidate(NAME, get_family(FAMILY), {})
    result = fit_candidate(candidate, widened, profile, primary, None, ctx.imbalance)
    result.settings["members"] = [r.name for r in usable]
    members = {r.name: model_of(r) for r in usable}
    result.model = StackedModel(members, result.model, dataset.schema, result.threshold)
    return result


def _aligned(result: CandidateResult, dataset: Dataset) -> np.ndarray:
    """A result's out-of-fold outputs in the order of the dataset's rows."""
    output = member_output(result, dataset.task)
    position = pd.Series(np.arange(len(result.valid.row)), index=result.valid.row)
    return output[position.loc[dataset.X.index].to_numpy()]


def _widened(dataset: Dataset, columns: dict[str, np.ndarray]) -> Dataset:
    X = dataset.X.assign(**columns)
    extra = tuple(Column(name, "numeric") for name in columns)
    schema = replace(dataset.schema, columns=dataset.schema.columns + extra)
    folds = [
        Fold(X.loc[f.X_train.index], f.y_train, X.loc[f.X_valid.index], f.y_valid)
        for f in dataset.folds
    ]
    return replace(dataset, schema=schema, X=X, folds=folds)


def wanted(spec, dataset) -> bool:
    """Whether a run adds the second layer: budgeted and bagged, with no time limit or one of
    at least MIN_SECONDS, and the ensemble not switched off."""
    if spec.budget is None or not dataset.bagged or not spec.ensemble:
        return False
    return spec.budget.time is None or spec.budget.time >= MIN_SECONDS


def train_layer2(results: list, ctx) -> CandidateResult | None:
    """Build, save and record the second layer (or read it back if an earlier attempt at the
    run did); None when there are too few first-layer results."""
    from trainforge.artifacts import save_candidate_files
    from trainforge.atomic import write_json
    from trainforge.bundle import SavedModel
    from trainforge.candidate_run import finished, record, save_model

    folder = ctx.run.path / "candidates" / NAME
    done = finished(folder, ctx.dataset.schema)
    if done is not None:
        return done
    saved = [r for r in results if (ctx.run.path / "candidates" / r.name / "model").is_dir()]

    def model_of(result):
        return SavedModel(ctx.run.path / "candidates" / result.name / "model")

    built = build_layer2(saved, ctx, model_of)
    if built is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    save_model(built, folder)
    save_candidate_files(built, folder, ctx.dataset.schema)
    write_json(folder / "metrics.json", record(built))
    built.model = None  # read back from its folder if it is needed
    return built
