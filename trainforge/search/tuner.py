"""Time-budgeted model search: a portfolio of candidates first, then Optuna trials.

Under a budget a run trains its candidates (the default ones in ``BUDGET_ORDER``, so a strong
model exists early), then tunes the best few with one Optuna study each: first the space's
portfolio of proven settings, then TPE samples. Trials of families built on the training loop
report each epoch to the study, which prunes bad ones, and stop at the deadline. The studies
live in ``<run>/search.db`` (SQLite), so ``trainforge resume`` continues them: finished trials
are read back, and a trial the kill interrupted is tried again with the same settings under the
same name (a neural net continues from its checkpoint).

Each trial is a candidate named ``<candidate>#t<k>``; the leaderboard keeps the best trial of
each candidate, ``search.csv`` lists every trial.
"""

from __future__ import annotations

import math
import shutil
import time
import zlib

from trainforge.candidates import Candidate
from trainforge.leaderboard import ranked
from trainforge.search.budget import Budget, PartDeadlines, fit_threads
from trainforge.search.history import write_history
from trainforge.search.spaces import (
    BUDGET_LEAVES_OUT,
    BUDGET_ORDER,
    FAMILY_MIN_SECONDS,
    NEURAL_MIN_SECONDS,
    space_for,
)

# How many of the best candidates the search tunes; the leader gets twice the trials.
TUNED = 3
LEADER_WEIGHT = 2
STARTUP_TRIALS = 5
# search.csv is rewritten after a trial at most this often (search.db always has every trial).
HISTORY_EVERY = 5.0


def search(spec, candidates, dataset, profile, primary, run, observer, train_one, started):
    """Train ``candidates`` then search within ``spec.budget``; returns (results, best).

    Args:
        train_one: trains one candidate into the run folder, or reads it back if an earlier
            attempt finished it: ``train_one(candidate, dataset, profile, primary, run,
            callbacks)``.
        started: ``time.monotonic()`` when this attempt at the run started.
    """
    used_before = (run.manifest.get("budget") or {}).get("used_seconds", 0.0)
    budget = Budget(spec.budget.time, spec.budget.trials, used_before, started)
    tuner = Tuner(budget, dataset, profile, primary, run, observer, train_one)
    if spec.models:
        order = candidates
    else:
        order = budget_order(candidates)
        left_out = [c for c in order if _left_out(c, spec.budget.time)]
        if left_out:
            observer.notice(
                f"budget: {', '.join(c.name for c in left_out)} left out to leave time for "
                "tuning (name them in models to train them)"
            )
        order = [c for c in order if c not in left_out]
    tuner.portfolio(order)
    tuner.tune()
    return tuner.finish()


def _left_out(candidate: Candidate, limit: float | None) -> bool:
    """Whether a default candidate is left out under a time limit of ``limit`` seconds (see
    BUDGET_LEAVES_OUT, NEURAL_MIN_SECONDS and FAMILY_MIN_SECONDS)."""
    if candidate.family.name in BUDGET_LEAVES_OUT:
        return True
    if limit is None:
        return False
    if "torch" in candidate.family.requires:
        return limit < NEURAL_MIN_SECONDS
    return limit < FAMILY_MIN_SECONDS.get(candidate.family.name, 0)


def budget_order(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates in ``BUDGET_ORDER`` first, then the rest in their (ladder) order."""

    def key(item):
        position, candidate = item
        name = candidate.family.name
        return (BUDGET_ORDER.index(name) if name in BUDGET_ORDER else len(BUDGET_ORDER), position)

    return [c for _, c in sorted(enumerate(candidates), key=key)]


class Tuner:
    """The state of one budgeted search: results so far, studies, and the budget."""

    def __init__(self, budget: Budget, dataset, profile, primary, run, observer, train_one):
        self.budget = budget
        self.dataset, self.profile, self.primary = dataset, profile, primary
        self.run, self.observer, self.train_one = run, observer, train_one
        self.results: list = []
        self.trial_best: dict[str, object] = {}
        self.best = None
        self.index = 0
        self.trials_run = 0
        self.stopped_by: str | None = None
        self.skipped: list[str] = []
        self.studies: dict[str, object] = {}
        self.bases: dict[str, Candidate] = {}
        self.interrupted: dict[str, int] = {}  # study -> trial id a kill interrupted
        self.history_written = -math.inf

    # -- the portfolio ---------------------------------------------------------------------

    def portfolio(self, candidates: list[Candidate]) -> None:
        """Train each candidate once, in order, while the budget allows (the first always)."""
        for candidate in candidates:
            space = space_for(candidate.family)
            interruptible = space is not None and space.hooks is not None
            done = (self.run.path / "candidates" / candidate.name / "metrics.json").is_file()
            fits = done or self.budget.fits(candidate.family.name, interruptible)
            if self.results and not fits:  # finished ones are read back even without time
                self.skipped.append(candidate.name)
                continue
            result = self._train(candidate, space, None)
            self.results.append(result)
            if space is not None and space.for_task(self.profile.task, set(candidate.params)):
                self.bases[candidate.name] = candidate
        if self.skipped:
            self.observer.notice(
                f"budget: no time left to train {', '.join(self.skipped)}; "
                "raise budget.time to include them"
            )

    # -- the search ------------------------------------------------------------------------

    def tune(self) -> None:
        """Run trials until the time or the trial limit is reached."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage = _storage(self.run.path / "search.db")
        for name in optuna.get_all_study_names(self.storage):
            if name in self.bases:
                self._reload(name)
        while True:
            if self.budget.trials is not None and self.trials_run >= self.budget.trials:
                self.stopped_by = "trials"
                return
            name = self._next_study()
            if name is None:
                out_of_time = not self.bases or self.budget.remaining() <= 0
                self.stopped_by = "time" if out_of_time and self.budget.limit else "nothing to tune"
                return
            self._trial(name)

    def _next_study(self) -> str | None:
        """The candidate to try next: among the best few, the one with the fewest trials per
        weight (the leader weighs double) whose fit fits the remaining time."""
        leaders = [r.name for r in ranked(self._current(), self.primary) if r.status == "ok"]
        base_of = {r.name: r.name.split("#", 1)[0] for r in self._current()}
        chosen: list[str] = []
        for name in leaders:
            base = base_of[name]
            if base in self.bases and base not in chosen:
                chosen.append(base)
        options = []
        for position, base in enumerate(chosen[:TUNED]):
            candidate = self.bases[base]
            space = space_for(candidate.family)
            if not self.budget.fits(candidate.family.name, space.hooks is not None):
                continue
            count = self._finished_count(base)
            weight = LEADER_WEIGHT if position == 0 else 1
            options.append((count / weight, position, base))
        return min(options)[2] if options else None

    def _study(self, name: str):
        import optuna

        if name not in self.studies:
            direction = "maximize" if self.primary.greater_is_better else "minimize"
            study = optuna.create_study(
                storage=self.storage,
                study_name=name,
                direction=direction,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5),
                load_if_exists=True,
            )
            if not study.trials:
                candidate = self.bases[name]
                space = space_for(candidate.family)
                allowed = {p.name for p in space.for_task(self.profile.task, set(candidate.params))}
                for settings in space.portfolio:
                    study.enqueue_trial({k: v for k, v in settings.items() if k in allowed})
            self.studies[name] = study
        return self.studies[name]

    def _trial(self, name: str) -> None:
        import optuna

        study = self._study(name)
        base = self.bases[name]
        space = space_for(base.family)
        study.sampler = self._sampler(name, self._finished_count(name))
        if name in self.interrupted:  # continue it: same number, name and settings
            trial = optuna.trial.Trial(study, self.interrupted.pop(name))
            trial.set_user_attr("resumed", True)
        else:
            trial = study.ask()
        if "started_seconds" not in trial.user_attrs:
            trial.set_user_attr("started_seconds", round(self.budget.used(), 3))
        settings = space.sample(trial, self.profile.task, set(base.params))
        label = f"{name}#t{self._finished_count(name) + 1}"
        trial.set_user_attr("candidate", label)
        candidate = Candidate(label, base.family, {**settings, **base.params})
        pruned = []
        report = self._reporter(trial, pruned) if space.hooks is not None else None
        result = self._train(candidate, space, report, save_if=self._beats(name), pruned=pruned)
        value = result.metrics.get(self.primary.name, math.nan)
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
        result.trial = {
            "study": name,
            "number": trial.number,
            "params": dict(trial.params),
            "value": None if math.isnan(value) else value,
            "state": state.name,
        }
        self.trials_run += 1
        self._keep_trial(name, result)
        if time.monotonic() - self.history_written > HISTORY_EVERY:
            write_history(self.run.path, self.storage)
            self.history_written = time.monotonic()

    def _reporter(self, trial, pruned: list):
        """``report(step, value) -> stop?`` for the training loop; minimised values (losses)
        are negated for a study that maximises."""
        sign = -1.0 if self.primary.greater_is_better else 1.0

        def report(step: int, value: float) -> bool:
            trial.report(sign * value, step)
            if trial.should_prune():
                pruned.append(step)
                return True
            return False

        return report

    def _sampler(self, name: str, finished: int):
        """A TPE sampler seeded from the run's seed, the candidate and the trial count, so a
        run with the same seed draws the same trials, also after a kill and resume."""
        import warnings

        import optuna

        seed = (self.profile.seed * 1_000_003 + zlib.crc32(name.encode()) + finished) % 2**32
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True
            )

    def _finished_count(self, name: str) -> int:
        """Trials of a study that ended: completed, pruned or failed."""
        if name not in self.studies:
            return 0
        trials = self.studies[name].get_trials(deepcopy=False)
        return sum(1 for t in trials if t.state.is_finished())

    def _reload(self, name: str) -> None:
        """Continue a study from an earlier attempt: read its finished trials back, and keep
        the trial a kill interrupted to be continued when the study's turn comes again (the
        same turn as in an uninterrupted run, so the search stays the same)."""
        import optuna

        study = self._study(name)
        base = self.bases[name]
        space = space_for(base.family)
        for old in study.get_trials(deepcopy=False):
            if old.state == optuna.trial.TrialState.RUNNING:
                self.interrupted[name] = old._trial_id
            elif old.state.is_finished() and old.user_attrs.get("candidate"):
                settings = {**space.fixed, **space.decode(old.params)}
                label = old.user_attrs["candidate"]
                candidate = Candidate(label, base.family, {**settings, **base.params})
                result = self.train_one(
                    candidate, self.dataset, self.profile, self.primary, self.run, None
                )
                result.trial = {
                    "study": name,
                    "number": old.number,
                    "params": dict(old.params),
                    "value": old.user_attrs.get("score"),
                    "state": old.state.name,
                }
                self.trials_run += 1
                self._keep_trial(name, result, reloaded=True)

    # -- bookkeeping -----------------------------------------------------------------------

    def _beats(self, name: str):
        """Whether a trial's result beats the study's best so far (only those are saved)."""

        def better(result) -> bool:
            current = self.trial_best.get(name)
            return current is None or ranked([current, result], self.primary)[0] is result

        return better

    def _train(self, candidate: Candidate, space, report, save_if=None, pruned=()):
        """Train one candidate (a portfolio entry or a trial) and record its time and result.

        Only the first fold reports to the study; once it is ``pruned``, the trial's other
        folds (under cross-validation) and its refit stop at once.
        """
        self.index += 1
        total = max(self.index, len(self.bases) + (self.budget.trials or 0))
        self.observer.candidate_started(self.index, total, candidate.name)
        callbacks = None
        if space is not None and space.hooks is not None:
            parts = len(self.dataset.folds) + int(self.dataset.refit)
            deadlines = PartDeadlines(self.budget.fit_deadline(), parts)

            def callbacks(part: str) -> list:
                if pruned:
                    return space.hooks(None, time.monotonic())
                return space.hooks(report if part == "fold-0" else None, deadlines.next())

        clock = time.perf_counter()
        with fit_threads():
            result = self.train_one(
                candidate, self.dataset, self.profile, self.primary, self.run, callbacks, save_if
            )
        seconds = time.perf_counter() - clock
        self.budget.record(candidate.family.name, seconds)
        self.best = self._better(self.best, result)
        self.observer.candidate_finished(self.index, total, result)
        self.run.update(budget=self.budget.summary(self.trials_run, self.stopped_by))
        return result

    def _keep_trial(self, name: str, result, reloaded: bool = False) -> None:
        """Keep the best trial of each candidate; other trials' models are deleted (their
        metrics and settings stay, and search.csv lists them)."""
        if reloaded:
            self.best = self._better(self.best, result)
        current = self.trial_best.get(name)
        winner = result if current is None else ranked([current, result], self.primary)[0]
        loser = current if winner is result else result
        self.trial_best[name] = winner
        if loser is not None and loser is not winner:
            loser.model = None
            shutil.rmtree(self.run.path / "candidates" / loser.name / "model", ignore_errors=True)

    def _better(self, best, result):
        if best is None:
            return result
        winner = ranked([best, result], self.primary)[0]
        (result if winner is best else best).model = None
        return winner

    def _current(self) -> list:
        return self.results + list(self.trial_best.values())

    def finish(self):
        """The leaderboard's results and the best; writes the search history."""
        from trainforge.search.history import write_importance

        for name, trial_id in self.interrupted.items():  # never got their turn again
            self.storage.set_trial_state_values(trial_id, _fail())
        if self.bases and hasattr(self, "storage"):
            write_history(self.run.path, self.storage)
            write_importance(self.run.path, self.storage, self.profile.seed)
        self.run.update(budget=self.budget.summary(self.trials_run, self.stopped_by))
        return self._current(), self.best


def _fail():
    import optuna

    return optuna.trial.TrialState.FAIL


def _storage(path):
    """Optuna's SQLite storage in WAL mode with normal syncing: a killed process loses nothing
    committed, and each trial costs a few fsyncs instead of dozens."""
    import optuna
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")

    def pragmas(connection, record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened from now on get the pragmas
    return storage
