"""A supervised run: data, candidates (or a budgeted search), ensembles, the final pick, the
leaderboard and the artifacts of the run folder."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, replace

from trainforge.artifacts import write_importance
from trainforge.atomic import write_json
from trainforge.bundle import SavedModel
from trainforge.candidate_run import (
    RunContext,
    collect,
    finished,
    has_model,
    is_finished,
    profile_of,
    record,
    save_model,
    start,
)
from trainforge.candidates import apply_threshold, plan
from trainforge.data.dataset import Dataset, load_dataset, with_folds
from trainforge.ensemble import build_ensemble, build_stack
from trainforge.errors import RunError
from trainforge.imbalance import Imbalance, plan_imbalance
from trainforge.leaderboard import leaderboard_frame
from trainforge.metrics import Metric, primary_metric
from trainforge.models.registry import Profile
from trainforge.report import write_report
from trainforge.rundir import ManifestNotices, RunDir
from trainforge.search.budget import bag_folds
from trainforge.selection import pick
from trainforge.spec import RunSpec


@dataclass
class Prepared:
    """What a supervised run knows before it has a folder: the data read, typed and split,
    the candidates planned. Bad input fails while preparing, so it leaves no run folder and no
    tracking run behind."""

    spec: RunSpec
    dataset: Dataset
    primary: Metric
    profile: Profile
    candidates: list
    imbalance: Imbalance | None
    notices: list[str]
    data_seconds: float
    device: object = None  # trainforge.device.Device
    executor: object = None  # trainforge.execution: where candidates execute


def prepare(spec: RunSpec, train=None, validation=None) -> Prepared:
    """Read and check the data, split it, and plan the candidates (bagging a budgeted run's
    small table changes its split: the returned spec says so)."""
    clock = time.perf_counter()
    dataset = load_dataset(spec.data, spec.task.value, spec.seed, train, validation)
    data_seconds = round(time.perf_counter() - clock, 3)
    primary = primary_metric(spec.metric, dataset.task)
    profile = profile_of(dataset, spec.seed)
    folds = bag_folds(spec, dataset, profile.modality)
    if folds is not None:
        spec, dataset = _bagged(spec, dataset, folds, profile.modality == "sequence")
        profile = profile_of(dataset, spec.seed)
    candidates, substitutions = plan(spec.models, profile)
    classes = dataset.schema.classes
    imbalance = plan_imbalance(dataset.y, classes, dataset.task, primary.name, spec.imbalance)
    notices = dataset.notices + substitutions
    if imbalance and imbalance.noteworthy:
        notices.append(imbalance.describe())
    device = _device(spec, candidates, profile, notices)
    profile = replace(profile, device=device.used)  # initial settings may depend on it
    from trainforge.execution import executor_for

    executor = executor_for(spec.execution)  # last: a cluster is only reached for good input
    return Prepared(
        spec,
        dataset,
        primary,
        profile,
        candidates,
        imbalance,
        notices,
        data_seconds,
        device,
        executor,
    )


def _device(spec: RunSpec, candidates: list, profile: Profile, notices: list[str]):
    """The device neural families use (trainforge.device); a GPU asked for is said to leave
    the boosting libraries on the CPU."""
    from trainforge.device import resolve

    limit = spec.budget.time if spec.budget is not None and not spec.models else None
    needs_torch = any(
        "torch" in c.family.requires
        and (limit is None or c.family.budget.joins(limit, profile.n_rows))
        for c in candidates
    )  # a short budget leaves the neural families out: no need to load torch to look
    device = resolve(spec.device, needs_torch or spec.device != "auto")
    boosting = [c.name for c in candidates if c.family.name in ("xgboost", "lightgbm", "catboost")]
    if device.used.startswith("cuda") and boosting:
        notices.append(
            f"device {device.used} ({device.gpu}): {', '.join(boosting)} train on the CPU "
            "(the installed wheels have no CUDA support); the neural families use the GPU"
        )
    return device


def train_all(prepared: Prepared, run: RunDir, observer, started: float):
    """Train, compare and pick; returns the RunResult. ``started`` is ``time.monotonic()`` when
    this attempt began (a time budget counts from there)."""
    from trainforge.run import RunResult, check_unchanged, inputs

    spec, dataset, primary = prepared.spec, prepared.dataset, prepared.primary
    profile, candidates, imbalance = prepared.profile, prepared.candidates, prepared.imbalance
    notices = list(prepared.notices)
    timings = {"data_seconds": prepared.data_seconds, "candidates": {}}
    check_unchanged(run, spec, dataset)
    observer.add(ManifestNotices(run))  # every notice from here on is kept in the manifest
    for message in notices:
        observer.notice(message)
    run.update(
        task=dataset.task,
        primary_metric=primary.name,
        inputs=inputs(spec, dataset),
        data=_data_summary(spec, dataset),
        imbalance=asdict(imbalance) if imbalance else None,
        device=prepared.device.record(),
        execution=prepared.executor.record(),
    )
    ctx = RunContext(
        dataset,
        profile,
        primary,
        run,
        imbalance,
        observer,
        device=prepared.device.used,
        executor=prepared.executor,
        data_parallel=spec.execution.data_parallel,
    )
    results = []
    if spec.budget is not None:  # a portfolio, then search, within the budget (docs/search.md)
        from trainforge.search.tuner import search

        results = search(spec, candidates, ctx, started)
        candidates = []
    closing = time.monotonic()  # under a budget, what follows counts in it (docs/search.md)
    combined = ["ensemble", "stacking"] if dataset.bagged else ["ensemble"]
    combined = combined if spec.ensemble and _combinable(spec, candidates, results) else []
    total = len(results) + len(candidates) + len(combined)
    index = len(results)
    waiting: list = []  # started, in order; at most the executor's slots at once
    for position, candidate in enumerate(candidates, start=index + 1):
        if not is_finished(run, candidate.name):  # one read back is not announced as training
            observer.candidate_started(position, total, candidate.name)
        waiting.append((position, start(candidate, ctx)))
        last = position == index + len(candidates)
        while waiting and (len(waiting) >= ctx.executor.slots or last):
            position_done, started = waiting.pop(0)
            result = collect(started, ctx)
            timings["candidates"][result.name] = round(started.seconds, 3)
            results.append(result)
            _drop_model(result)  # only the best model stays in memory; all are on disk
            observer.candidate_finished(position_done, total, result)
            progress = ctx.executor.progress()
            if progress:
                observer.stage(progress)
    index += len(candidates)
    ctx.saver.wait()  # every candidate's files are written before they are combined
    for name in combined:
        index += 1
        if not is_finished(run, name):
            observer.candidate_started(index, total, name)
        clock = time.perf_counter()
        result = _combine(name, results, ctx, spec.seed)
        timings["candidates"][name] = round(time.perf_counter() - clock, 3)
        if result is not None:
            results.append(result)
            observer.candidate_finished(index, total, result)
    best, selection = pick([r for r in results if r.listed], primary, dataset.task, spec.seed)
    if best is None or best.status != "ok":
        raise RunError(f"every candidate failed; see {run.path / 'candidates'}/*/error.txt")
    _forget_unlisted(results, run)
    if best.model is None:  # loaded when something predicts with it (the importance, Python)
        best.model = SavedModel(run.path / "candidates" / best.name / "model")
    listed = [r for r in results if r.listed]
    board = leaderboard_frame(listed, primary, dataset.task, first=best.name)
    run.write_text("leaderboard.csv", board.to_csv(index=False))
    _importance(best, dataset, primary, run, observer, _left_for_importance(spec, run, closing))
    if spec.export == "onnx":
        _export(best, dataset, run, observer)
    run.update(
        best={"candidate": best.name, primary.name: best.metrics[primary.name]},
        selection=selection,
        timings=timings,
        threads={r.name: r.threads for r in listed if r.threads is not None},
        execution=ctx.executor.record(),
    )
    observer.best_chosen(str(run.path))
    observer.stage("writing the report")
    write_report(run.path, status="completed")  # the last artifact; completed comes next
    if spec.budget is not None:
        from trainforge.search.budget import closed

        run.update(budget=closed(run.manifest["budget"], time.monotonic() - closing))
    return RunResult(run.path, board, best.model, best.name, results)


def _bagged(spec: RunSpec, dataset: Dataset, folds: int, series: bool):
    """A budgeted run on a small table, or any run on few series, bags its candidates over
    ``folds`` folds; the spec (and so spec.yaml) records it, so a resumed run splits the same
    way."""
    from trainforge.search.budget import SERIES_BAG_ROWS, bag_rows

    split = spec.data.split.model_copy(update={"strategy": "cv", "folds": folds})
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"split": split})})
    dataset = with_folds(dataset, folds, spec.seed)
    why = (
        f"{len(dataset.X)} training series (fewer than {SERIES_BAG_ROWS:,})"
        if series
        else f"budget: {len(dataset.X)} training rows (fewer than {bag_rows(spec.budget.time):,})"
    )
    dataset.notices.append(
        f"{why}: every candidate is {folds} models, one per fold of {folds}-fold "
        "cross-validation, scored on the rows it did not see and predicting their average "
        "(set split.strategy: holdout to keep a holdout)"
    )
    return spec, dataset


def _combinable(spec: RunSpec, candidates: list, results: list) -> bool:
    """Whether an ensemble can be built: at least two candidates (or search results) besides
    the baseline."""
    from trainforge.models.registry import is_baseline

    names = [c.family.name for c in candidates] + [r.family for r in results]
    return sum(not is_baseline(name) for name in names) >= 2


def _drop_model(result) -> None:
    """Keep a finished candidate's model on disk only (read back when it is needed)."""
    if result.model is not None:
        result.model = None


def _combine(name: str, results: list, ctx: RunContext, seed: int):
    """Build, score and save the ``ensemble`` or ``stacking`` candidate (read back if an
    earlier attempt at this run did). Members are copied from their saved folders."""
    run, dataset = ctx.run, ctx.dataset
    folder = run.path / "candidates" / name
    done = finished(folder, dataset.schema)
    if done is not None:
        return done
    shutil.rmtree(folder / "model", ignore_errors=True)
    saved = [r for r in results if r.status == "ok" and has_model(run, r.name)]

    def model_of(result):
        return SavedModel(run.path / "candidates" / result.name / "model")

    build = build_ensemble if name == "ensemble" else build_stack
    built = build(saved, ctx.primary, dataset.task, seed, model_of)
    if built is None:
        return None
    if ctx.imbalance and ctx.imbalance.threshold_metric:
        apply_threshold(built, list(built.metrics), ctx.imbalance.threshold_metric, seed)
        built.model.threshold = built.threshold
    folder.mkdir(parents=True, exist_ok=True)
    from trainforge.artifacts import save_candidate_files

    members = {n: m.path for n, m in built.model.members.items()}
    save_model(built, folder, saved=members)
    save_candidate_files(built, folder, dataset.schema)
    write_json(folder / "metrics.json", record(built))
    built.model = None  # read back from its folder if it is picked
    return built


def _forget_unlisted(results: list, run: RunDir) -> None:
    """Delete the models of search trials the leaderboard does not list: they were kept for
    the ensemble, which holds copies of those it chose. Their scores and predictions stay."""
    for result in results:
        if not result.listed:
            shutil.rmtree(run.path / "candidates" / result.name / "model", ignore_errors=True)


def _importance(best, dataset, primary, run: RunDir, observer, seconds=None) -> None:
    """Permutation importance of the best model; a model it cannot handle only loses it.
    Images get none: one pixel shuffled at a time says little, and a sample of 200 of 784
    pixels took 21 s after a CNN's 1 s fit (700 Fashion-MNIST images, 2 cores)."""
    from trainforge.data.images import image_shape_of

    if image_shape_of(c.name for c in dataset.schema.columns):
        observer.notice("permutation importance is not computed for images")
        return
    try:
        folder = run.candidate_dir(best.name)
        observer.stage(f"permutation importance of {best.name}")
        notice = write_importance(best.model, dataset, primary, folder, seconds)
    except Exception as exc:  # noqa: BLE001 - an extra for the report, never worth the run
        notice = f"permutation importance skipped for {best.name}: {exc}"
    if notice:
        observer.notice(notice)


def _export(best, dataset, run: RunDir, observer) -> None:
    """The best model as ``model.onnx`` in the run folder, verified on the run's training
    rows (trainforge.onnx_export); a model with no faithful ONNX form is a notice, not a
    failed run."""
    from trainforge.errors import TrainforgeError

    observer.stage("exporting the best model to ONNX")
    try:
        from trainforge.onnx_export import export

        folder = run.path / "candidates" / best.name / "model"
        manifest = export(folder, run.path / "model.onnx", features=dataset.X)
        observer.notice(
            f"export: model.onnx ({manifest['parts']} part(s)), largest difference from the "
            f"model {manifest['verification']['max_difference']:.2g} on "
            f"{manifest['verification']['rows']} check rows"
        )
    except ImportError:
        observer.notice('export: needs the onnx extra (pip install "trainforge[onnx]")')
    except TrainforgeError as exc:
        observer.notice(str(exc))


def _left_for_importance(spec: RunSpec, run: RunDir, closing: float) -> float | None:
    """Seconds a time budget leaves for the permutation importance (the report's share kept
    back), or None without a time limit."""
    from trainforge.search.budget import REPORT_SECONDS

    if spec.budget is None or spec.budget.time is None:
        return None
    used = run.manifest["budget"]["used_seconds"] + time.monotonic() - closing
    return spec.budget.time - used - REPORT_SECONDS


def _data_summary(spec: RunSpec, dataset: Dataset) -> dict:
    if "validation" in dataset.fingerprints:
        validation = {"strategy": "file", "rows": len(dataset.folds[0].X_valid)}
    elif dataset.bagged:
        validation = {"strategy": "cv", "folds": len(dataset.folds), "bagged": True}
    else:
        validation = {
            "strategy": "holdout",
            "fraction": spec.data.split.validation_fraction,
            "rows": len(dataset.folds[0].X_valid),
        }
    return {
        "rows": len(dataset.X),
        "columns": len(dataset.schema.columns),
        "dropped_columns": list(dataset.schema.dropped),
        "validation": validation,
    }
