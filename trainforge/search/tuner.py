"""Time-budgeted model search: the learned portfolio first, then Optuna trials.

Under a budget a run with the default candidates trains the baseline, then the learned
portfolio's configurations in their order (trainforge.search.portfolio), then the other default
families, each while its predicted time fits. Then it tunes the best few families with one
Optuna study each; a family's study starts from what its portfolio entries scored (they are
added to it as finished trials), so its first sampled trials already follow them. Named
``models`` train as named and each gets its own study. Trials of families that can be stopped
stop at their deadline; those on trainforge's training loop also report each epoch to the
study, which prunes bad ones (boosting fits are not pruned: trainforge.search.hooks). The
studies live in ``<run>/search.db`` (SQLite), so ``trainforge resume`` continues them:
finished trials are read back, and a trial the kill interrupted is tried again with the same
settings under the same name (a neural net continues from its checkpoint).

Each trial is a candidate named ``<study>#t<k>``. Every candidate and trial keeps its scores
and validation predictions; the models of the best ones (POOL) are kept for the ensemble. The
leaderboard lists each family's first configuration and its best result (and every named or
non-portfolio candidate); ``search.csv`` lists every trial.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import deque
from dataclasses import dataclass

from trainforge import stacking
from trainforge.atomic import write_json
from trainforge.candidate_run import Limits, collect, is_finished, record, start, train_one
from trainforge.candidates import Candidate, CandidateResult
from trainforge.leaderboard import ranked
from trainforge.search.budget import Budget, PartDeadlines
from trainforge.search.history import write_history
from trainforge.search.portfolio import default_order
from trainforge.search.study import (
    estimator_defaults,
    failed_state,
    sampler,
    storage,
    trial_record,
)

# How many of the best studies the search tunes; the leader gets twice the trials.
TUNED = 3
LEADER_WEIGHT = 2
# Models kept on disk for the ensemble: the best this many candidates and trials by score,
# within this many megabytes (a bagged forest on 16,000 rows takes hundreds); listed candidates
# always keep theirs.
POOL = 25
POOL_MB = 2000
# search.csv is rewritten after a trial at most this often (search.db always has every trial).
HISTORY_EVERY = 5.0


def search(spec, candidates: list[Candidate], ctx, started: float) -> list[CandidateResult]:
    """Train ``candidates`` (or the portfolio) then search within ``spec.budget``; returns every
    result, the leaderboard's marked ``listed``.

    Args:
        started: ``time.monotonic()`` when this attempt at the run started.
    """
    used_before = (ctx.run.manifest.get("budget") or {}).get("used_seconds", 0.0)
    budget = Budget(spec.budget.time, spec.budget.trials, used_before, started)
    tuner = Tuner(budget, ctx)
    if spec.models:
        order = [(c, c.name if c.family.space else None, c) for c in candidates]
    else:
        order, left_out = default_order(candidates, ctx.profile, spec.budget.time)
        if left_out:
            ctx.observer.notice(
                f"budget: {', '.join(left_out)} left out to leave time for the portfolio and "
                "tuning (name them in models to train them)"
            )
    tuner.portfolio(order)
    layer2 = stacking.wanted(spec, ctx.dataset)
    if layer2:  # keep time for the second stacking layer after the search
        budget.hold(tuner.layer2_seconds() or 0.0)
    tuner.tune()
    budget.held = 0.0
    if layer2:
        tuner.layer2()
    return tuner.finish()


class Tuner:
    """The state of one budgeted search: results so far, studies, and the budget."""

    def __init__(self, budget: Budget, ctx):
        self.budget, self.ctx = budget, ctx
        self.results: list[CandidateResult] = []
        self.study_of: dict[str, str] = {}  # candidate or trial name -> its study
        self.bases: dict[str, Candidate] = {}  # study -> the candidate its trials build on
        self.first: set[str] = set()  # the first configuration of each study: always listed
        self.index = 0
        self.trials_run = 0
        self.stopped_by: str | None = None
        self.skipped: list[str] = []
        self.studies: dict[str, object] = {}
        self.storage = None  # search.db, opened for the first trial or an earlier attempt's
        self.interrupted: dict[str, list[int]] = {}  # study -> trial ids a kill interrupted
        self.pending: dict[str, int] = {}  # study -> its trials asked for but not yet told
        self.started_studies: set[str] = set()
        self.history_written = -math.inf

    # -- the portfolio ---------------------------------------------------------------------

    def portfolio(self, order: list[tuple[Candidate, str | None, Candidate]]) -> None:
        """Train each candidate once, in order, while its predicted time fits (the first
        always; finished ones are read back even without time)."""
        folds = len(self.ctx.dataset.folds)
        waiting: deque = deque()  # started, in order; at most the executor's slots at once
        for candidate, study, base in order:
            space = candidate.family.space
            interruptible = space is not None and space.hooks is not None
            done = (self.ctx.run.path / "candidates" / candidate.name / "metrics.json").is_file()
            fits = done or self.budget.fits(
                candidate.family, self.ctx.profile, folds, interruptible
            )
            if (self.results or waiting) and not fits:
                self.skipped.append(candidate.name)
                continue
            if study is not None and space.for_task(self.ctx.profile.task, set(base.params)):
                self.study_of[candidate.name] = study
                self.bases.setdefault(study, base)
                if study not in self.started_studies:
                    self.first.add(candidate.name)
                    self.started_studies.add(study)
            waiting.append(self._start(candidate, None, save_if=self._worth_saving))
            while len(waiting) >= self.ctx.executor.slots:
                self._portfolio_done(waiting.popleft())
        while waiting:
            self._portfolio_done(waiting.popleft())
        if self.skipped:
            shown = ", ".join(self.skipped[:6]) + (", ..." if len(self.skipped) > 6 else "")
            self.ctx.observer.notice(
                f"budget: no time left to train {len(self.skipped)} more candidate(s) "
                f"({shown}); raise budget.time to include them"
            )

    def _portfolio_done(self, running) -> None:
        result = self._collect(running)
        self._announce(running, result)
        self.results.append(result)
        self._evict()

    # -- the search ------------------------------------------------------------------------

    def tune(self) -> None:
        """Run trials until the time or the trial limit is reached.

        With an executor of several slots (Ray workers) trials are decided in rounds: trial k
        is asked for once the results of trials up to k - slots are told, always in the order
        they were asked, so the trials depend on the seed and the slots, never on which task
        finishes first. With one slot that is the plain ask, fit, tell of a local run.
        """
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if (self.ctx.run.path / "search.db").exists():
            self._open()
        waiting: deque = deque()
        while True:
            limit = self.budget.trials
            if limit is not None and self.trials_run + len(waiting) >= limit:
                self.stopped_by = "trials"
                break
            name = self._next_study()
            if name is None and waiting:  # the results still to come decide what is next
                self._tell(waiting.popleft())
                continue
            if name is None and self.bases and self.budget.last_fits():
                continue  # no fit had time under the share rule: each now gets all that is left
            if name is None:  # with studies to tune, none had time left for a fit
                timed = self.bases and self.budget.limit is not None
                self.stopped_by = "time" if timed else "nothing to tune"
                break
            if self.storage is None:  # opening it takes about a second: only for a trial
                self._open()
            waiting.append(self._ask(name))
            while len(waiting) >= self.ctx.executor.slots:
                self._tell(waiting.popleft())
        while waiting:
            self._tell(waiting.popleft())

    def _open(self) -> None:
        """Open search.db and continue the studies an earlier attempt left in it."""
        import optuna

        self.storage = storage(self.ctx.run.path / "search.db")
        for name in optuna.get_all_study_names(self.storage):
            if name in self.bases:
                self._reload(name)

    def _next_study(self) -> str | None:
        """The study to try next: among the best few, the one with the fewest trials per
        weight (the leader weighs double) whose fit fits the remaining time."""
        chosen: list[str] = []
        for result in ranked(self.results, self.ctx.primary):
            study = self.study_of.get(result.name)
            if result.status == "ok" and study is not None and study not in chosen:
                chosen.append(study)
        options = []
        folds = len(self.ctx.dataset.folds)
        for position, name in enumerate(chosen[:TUNED]):
            family = self.bases[name].family
            interruptible = family.space.hooks is not None
            if not self.budget.fits(family, self.ctx.profile, folds, interruptible):
                continue
            weight = LEADER_WEIGHT if position == 0 else 1
            options.append((self._turns(name) / weight, position, name))
        return min(options)[2] if options else None

    def _study(self, name: str):
        import optuna

        if name not in self.studies:
            direction = "maximize" if self.ctx.primary.greater_is_better else "minimize"
            study = optuna.create_study(
                storage=self.storage,
                study_name=name,
                direction=direction,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5),
                load_if_exists=True,
            )
            if not study.trials:
                self._seed(study, name)
            self.studies[name] = study
        return self.studies[name]

    def _seed(self, study, name: str) -> None:
        """Add the study's portfolio results to it as finished trials, so its sampler starts
        from them (settings outside the space's ranges cannot be added and are not)."""
        import optuna

        base = self.bases[name]
        space, task = base.family.space, self.ctx.profile.task
        defaults = estimator_defaults(base.family, task)
        for result in self.results:
            value = result.metrics.get(self.ctx.primary.name, math.nan)
            if self.study_of.get(result.name) != name or result.status != "ok":
                continue
            labels = space.encode({**defaults, **result.settings}, task)
            if labels is None or math.isnan(value):
                continue
            labels = {k: v for k, v in labels.items() if k not in base.params}
            study.add_trial(
                optuna.trial.create_trial(
                    params=labels,
                    distributions={
                        k: d for k, d in space.distributions(task).items() if k in labels
                    },
                    value=value,
                    user_attrs={"candidate": result.name, "seeded": True},
                )
            )

    def _ask(self, name: str) -> _Asked:
        """Ask the study for a trial and start it (a kill's interrupted trial is continued:
        same number, name and settings)."""
        import optuna

        study = self._study(name)
        base = self.bases[name]
        space = base.family.space
        study.sampler = sampler(self.ctx.profile.seed, name, self._turns(name))
        if self.interrupted.get(name):
            trial = optuna.trial.Trial(study, self.interrupted[name].pop(0))
            trial.set_user_attr("resumed", True)
        else:
            trial = study.ask()
        if "started_seconds" not in trial.user_attrs:
            trial.set_user_attr("started_seconds", round(self.budget.used(), 3))
        settings = space.sample(trial, self.ctx.profile.task, set(base.params))
        label = f"{name}#t{self._turns(name) + 1}"
        trial.set_user_attr("candidate", label)
        candidate = Candidate(label, base.family, {**settings, **base.params})
        self.study_of[label] = name
        pruned: list[int] = []
        # Pruning compares a trial with the others' reports at the same step, which trials in
        # flight at once would make depend on timing, and a Ray task cannot report to this
        # process: only a local search with one slot prunes.
        executor = self.ctx.executor
        prunes = space.prunes and executor.slots == 1 and executor.backend == "local"
        report = self._reporter(trial, pruned) if prunes else None
        running = self._start(candidate, report, save_if=self._worth_saving, pruned=pruned)
        self.pending[name] = self.pending.get(name, 0) + 1
        return _Asked(name, trial, running, pruned)

    def _tell(self, asked: _Asked) -> None:
        """Wait for an asked trial's result and tell its study."""
        import optuna

        name, trial, pruned = asked.study, asked.trial, asked.pruned
        result = self._collect(asked.running)
        self.pending[name] -= 1
        study = self.studies[name]
        value = result.metrics.get(self.ctx.primary.name, math.nan)
        trial.set_user_attr("score", None if math.isnan(value) else value)
        trial.set_user_attr("finished_seconds", round(self.budget.used(), 3))
        if result.status != "ok" or math.isnan(value):
            state = optuna.trial.TrialState.FAIL
            study.tell(trial, state=state)
        elif pruned:
            state = optuna.trial.TrialState.PRUNED
            study.tell(trial, state=state)
        else:
            state = optuna.trial.TrialState.COMPLETE
            study.tell(trial, value)
        result.trial = trial_record(name, trial.number, trial.params, value, state.name)
        self._announce(asked.running, result)  # after the tell: the line says "pruned"
        self._add_trial(result)
        if time.monotonic() - self.history_written > HISTORY_EVERY:
            write_history(self.ctx.run.path, self.storage)
            self.history_written = time.monotonic()

    def _reporter(self, trial, pruned: list):
        """``report(step, value) -> stop?`` for the training loop; minimised values (losses)
        are negated for a study that maximises."""
        sign = -1.0 if self.ctx.primary.greater_is_better else 1.0

        def report(step: int, value: float) -> bool:
            trial.report(sign * value, step)
            if trial.should_prune():
                pruned.append(step)
                return True
            return False

        return report

    def _turns(self, name: str) -> int:
        """Trials of a study asked for so far: those that ended and those in flight."""
        return self._finished_count(name) + self.pending.get(name, 0)

    def _finished_count(self, name: str) -> int:
        """Sampled trials of a study that ended: completed, pruned or failed (the portfolio
        results it was seeded with do not count)."""
        if name not in self.studies:
            return 0
        trials = self.studies[name].get_trials(deepcopy=False)
        return sum(1 for t in trials if t.state.is_finished() and not t.user_attrs.get("seeded"))

    def _reload(self, name: str) -> None:
        """Continue a study from an earlier attempt: read its finished trials back, and keep
        the trial a kill interrupted to be continued when the study's turn comes again (the
        same turn as in an uninterrupted run, so the search stays the same)."""
        import optuna

        study = self._study(name)
        base = self.bases[name]
        space = base.family.space
        for old in study.get_trials(deepcopy=False):
            if old.user_attrs.get("seeded"):
                continue
            if old.state == optuna.trial.TrialState.RUNNING:
                self.interrupted.setdefault(name, []).append(old._trial_id)
            elif old.state.is_finished() and old.user_attrs.get("candidate"):
                settings = {**space.fixed, **space.decode(old.params)}
                label = old.user_attrs["candidate"]
                candidate = Candidate(label, base.family, {**settings, **base.params})
                self.study_of[label] = name
                folder = self.ctx.run.path / "candidates" / label
                written = (folder / "metrics.json").is_file()  # else a kill cut its saving
                result = train_one(candidate, self.ctx)
                result.model = None
                value = old.user_attrs.get("score")
                result.trial = trial_record(name, old.number, old.params, value, old.state.name)
                self._add_trial(result, written=written)

    # -- the second stacking layer ---------------------------------------------------------

    def layer2_seconds(self) -> float | None:
        """Predicted seconds of the second layer (None: no way to tell)."""
        from trainforge.models.registry import get_family

        family = get_family(stacking.FAMILY)
        return self.budget.predicted(family, self.ctx.profile, len(self.ctx.dataset.folds))

    def layer2(self) -> None:
        """Train the second stacking layer when its predicted time fits (trainforge.stacking)."""
        from trainforge.models.registry import get_family

        family = get_family(stacking.FAMILY)
        done = (self.ctx.run.path / "candidates" / stacking.NAME / "metrics.json").is_file()
        folds = len(self.ctx.dataset.folds)
        if not done and not self.budget.fits(family, self.ctx.profile, folds, False):
            self.ctx.observer.notice("budget: no time left for the second stacking layer")
            return
        self.index += 1
        self.ctx.observer.candidate_started(self.index, self.index, stacking.NAME)
        self.ctx.saver.wait()  # the first layer's models are on disk
        result = stacking.train_layer2(self.results, self.ctx)
        if result is not None:
            self.results.append(result)
            self.ctx.observer.candidate_finished(self.index, self.index, result)
        self.ctx.run.update(budget=self.budget.summary(self.trials_run, self.stopped_by))

    # -- bookkeeping -----------------------------------------------------------------------

    def _start(self, candidate: Candidate, report, save_if=None, pruned=()) -> _Running:
        """Start one candidate (a portfolio entry or a trial); ``_collect`` records its time
        and result.

        Only the first fold reports to the study; once it is ``pruned``, the trial's other
        folds stop at once. Its deadline counts from when it really starts fitting (a local
        executor fits a candidate only when it is collected).
        """
        self.index += 1
        total = max(self.index, len(self.bases) + (self.budget.trials or 0))
        done = is_finished(self.ctx.run, candidate.name)
        if not done:  # read back: not training
            self.ctx.observer.candidate_started(self.index, total, candidate.name)
        space = candidate.family.space
        folds = len(self.ctx.dataset.folds)
        callbacks, deadline = None, math.inf
        if space is not None and space.hooks is not None:
            deadline = self.budget.fit_deadline()
            deadlines: list[PartDeadlines] = []

            def callbacks(part: str, workers: int = 1) -> list:
                if not deadlines:
                    deadlines.append(PartDeadlines(self.budget.fit_deadline(), folds))
                if pruned:
                    return space.hooks(None, time.monotonic(), lambda: True)
                reporter = report if part == "fold-0" else None
                return space.hooks(reporter, deadlines[0].next(workers), lambda: bool(pruned))

        by_size = self.budget.by_size(candidate.family, self.ctx.profile, folds)
        started = start(candidate, self.ctx, Limits(callbacks, save_if, deadline))
        return _Running(started, self.index, total, by_size, done)

    def _collect(self, running: _Running) -> CandidateResult:
        """Wait for a started candidate's result and record its time (``_announce`` then
        tells the observer)."""
        result = collect(running.started, self.ctx)
        result.model = None  # on disk; the run reads back what it needs
        if not running.done:  # read back from an earlier attempt: it says nothing of fit times
            family = running.started.candidate.family.name
            self.budget.record(family, running.started.seconds, running.by_size)
        self.budget.saving = self.ctx.saver.longest  # the reserve covers the last one's files
        return result

    def _announce(self, running: _Running, result: CandidateResult) -> None:
        self.ctx.observer.candidate_finished(running.index, running.total, result)
        progress = self.ctx.executor.progress()
        if progress:
            self.ctx.observer.stage(progress)
        self.ctx.run.update(budget=self.budget.summary(self.trials_run, self.stopped_by))

    def _add_trial(self, result: CandidateResult, written: bool = False) -> None:
        """Count a trial's result in; its metrics.json gets the trial's study and number
        unless an earlier attempt ``written`` it."""
        self.trials_run += 1
        self.results.append(result)
        if not written:  # after the candidate's own files (the saver keeps the order)
            path = self.ctx.run.path / "candidates" / result.name / "metrics.json"
            self.ctx.saver.submit(lambda: write_json(path, record(result)))
        self._evict()

    def _worth_saving(self, result: CandidateResult) -> bool:
        """Whether a new result's model is saved: it may be listed, or it is among the POOL
        best so far."""
        if result.name not in self.study_of or result.name in self.first:
            return True
        return result.name in self._kept([*self.results, result])

    def _kept(self, results: list) -> set[str]:
        """Names whose models stay on disk: listed ones, and the best by score up to POOL
        models and POOL_MB megabytes."""
        kept = {r.name for r in results if self._listed(r, results)}
        usable = [r for r in results if (r.trial or {}).get("state") != "PRUNED"]
        count, size = 0, 0.0
        for result in ranked(usable, self.ctx.primary):
            kb = 0.0 if math.isnan(result.size_kb) else result.size_kb
            if result.status != "ok" or count >= POOL or size + kb > POOL_MB * 1024:
                continue
            kept.add(result.name)
            count, size = count + 1, size + kb
        return kept

    def _listed(self, result: CandidateResult, results: list) -> bool:
        """Listed on the leaderboard: a candidate outside any study, the first configuration
        of a study, or a study's best result."""
        study = self.study_of.get(result.name)
        if study is None or result.name in self.first:
            return True
        mine = [r for r in results if self.study_of.get(r.name) == study]
        return ranked(mine, self.ctx.primary)[0] is result

    def _evict(self) -> None:
        """Delete the models that left the pool (their scores and predictions stay)."""
        kept = self._kept(self.results)
        for result in self.results:
            if result.name not in kept:
                folder = self.ctx.run.path / "candidates" / result.name / "model"
                self.ctx.saver.submit(lambda folder=folder: shutil.rmtree(folder, True))

    def finish(self) -> list[CandidateResult]:
        """Every result, each marked listed or not; writes the search history."""
        from trainforge.search.history import write_importance

        for trial_ids in self.interrupted.values():  # never got their turn again
            for trial_id in trial_ids:
                self.storage.set_trial_state_values(trial_id, failed_state())
        if self.bases and self.storage is not None:
            write_history(self.ctx.run.path, self.storage)
            write_importance(self.ctx.run.path, self.storage, self.ctx.profile.seed)
        for result in self.results:
            result.listed = self._listed(result, self.results)
        self.ctx.run.update(budget=self.budget.summary(self.trials_run, self.stopped_by))
        return self.results


@dataclass
class _Running:
    """A started candidate and what recording its end needs."""

    started: object  # trainforge.candidate_run.Started
    index: int
    total: int
    by_size: float | None
    done: bool  # finished by an earlier attempt at the run: read back


@dataclass
class _Asked:
    """A trial asked of its study and started, to be told its result in turn."""

    study: str
    trial: object  # optuna.trial.Trial
    running: _Running
    pruned: list
