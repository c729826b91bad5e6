"""What a run tells the outside world while it works.

The runner calls an observer; the console display and experiment tracking implement it. Nothing
in the runner prints. ``FanOut`` passes every event to several observers at once (console +
MLflow), and tolerates observers written before an event existed: a missing method is skipped.
"""

from __future__ import annotations

from typing import Protocol


class RunObserver(Protocol):
    def run_started(self, run_id: str, path: str) -> None: ...

    def notice(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def candidate_started(self, index: int, total: int, name: str) -> None: ...

    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None: ...

    def candidate_finished(self, index: int, total: int, result) -> None: ...

    def round_end(self, name: str, round_: int, total: int, logs: dict) -> None: ...

    def stage(self, text: str) -> None: ...

    def best_chosen(self, path: str) -> None: ...

    def run_finished(self, status: str, path: str) -> None: ...


class SilentObserver:
    """Ignores every event (the default in Python; the CLI shows progress)."""

    def run_started(self, run_id: str, path: str) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def candidate_started(self, index: int, total: int, name: str) -> None:
        pass

    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        pass

    def candidate_finished(self, index: int, total: int, result) -> None:
        pass

    def round_end(self, name: str, round_: int, total: int, logs: dict) -> None:
        """A boosting round ended (for a live display; trackers read rounds from history)."""

    def stage(self, text: str) -> None:
        """A closing step starts: the importance, the report, the tracking upload."""

    def best_chosen(self, path: str) -> None:
        """The best model is picked and saved, and the manifest names it (a tracker logs it
        while the report is drawn)."""

    def run_finished(self, status: str, path: str) -> None:
        pass


EVENTS = (
    "run_started",
    "notice",
    "warning",
    "candidate_started",
    "epoch_end",
    "candidate_finished",
    "round_end",
    "stage",
    "best_chosen",
    "run_finished",
)


class FanOut:
    """One observer that forwards each event to many, in order.

    Args:
        observers: receivers; None entries are dropped, and an observer lacking an event's
            method (one written against an older protocol) simply does not get that event.
    """

    def __init__(self, *observers):
        self.observers = [o for o in observers if o is not None]

    def add(self, observer) -> None:
        self.observers.append(observer)

    def __getattr__(self, event: str):
        if event not in EVENTS:
            raise AttributeError(event)

        def forward(*args) -> None:
            for observer in self.observers:
                method = getattr(observer, event, None)
                if method is not None:
                    method(*args)

        return forward


class LogObserver:
    """Sends a run's notices and warnings to the ``trainforge`` logger, for Python users who
    route logging somewhere. With ``loud``, warnings are logged at WARNING, which Python shows
    even with no logging set up; otherwise at INFO (something else prints them)."""

    def __init__(self, loud: bool = False):
        import logging

        self.logger = logging.getLogger("trainforge")
        self.level = logging.WARNING if loud else logging.INFO

    def notice(self, message: str) -> None:
        import logging

        self.logger.log(logging.INFO, message)

    def warning(self, message: str) -> None:
        self.logger.log(self.level, message)
