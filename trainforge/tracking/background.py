"""A tracker that works in a child process, so tracking costs training no time.

Opening an MLflow store (importing mlflow and SQLAlchemy, checking the database) and every
logging call are Python work that held the interpreter's lock for seconds when they ran in a
thread of the training process: a 200-row run took 2.5 s longer with tracking on. Here they run
in a process forked from the run's, on another core: events go down a queue in order (a
candidate's result as a small record, never its model), and what the tracker would print comes
back up a pipe and is printed by the run. ``run_finished`` waits until the child has sent
everything, so a run ends only after its tracking run is complete. The child ignores Ctrl-C (the
run handles it and says how the run ended) and dies with the run (a killed run leaves no
tracker behind). Once its store is open, a fit choosing its thread count does not take it for
another process's load (trainforge.threads): its logging comes in short bursts as each fit ends,
while its start-up (importing MLflow, opening the store) keeps a core busy for seconds. A
tracker that cannot be opened, or fails later, prints one warning and the run goes on (the run
folder has everything).

Where forking is not available the same work runs in a thread of the run's process.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
from types import SimpleNamespace
from typing import Callable

from trainforge.errors import TrackingError
from trainforge.events import EVENTS
from trainforge.threads import count_again, count_as_ours

_STOP = "stop"
# what the tracker reads of a candidate's result (trainforge.tracking.mlflow_tracker)
RESULT_FIELDS = ("name", "family", "status", "error", "settings", "metrics", "fit_seconds")


class InBackground:
    """Forwards run events to ``make()``'s tracker, made and used in a child process."""

    def __init__(self, make: Callable[[], object]):
        forking = "fork" in multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork") if forking else None
        self._events = context.Queue() if forking else queue.Queue()
        self._replies = context.SimpleQueue() if forking else None
        self._opened = context.Event() if forking else threading.Event()
        args = (make, self._events, self._replies, self._opened)
        if forking:
            self._worker = context.Process(
                target=_child, args=args, name="trainforge-tracking", daemon=True
            )
        else:
            self._worker = threading.Thread(
                target=_work, args=args, name="trainforge-tracking", daemon=True
            )
        self._worker.start()
        if forking:
            count_as_ours(self._worker.pid, ready=self._opened.is_set)

    def __getattr__(self, event: str):
        if event not in EVENTS:
            raise AttributeError(event)

        def send(*args) -> None:
            self._events.put((event, tuple(_portable(a) for a in args)))
            self._print_replies()

        return send

    def run_finished(self, status: str, path: str) -> None:
        self._events.put(("run_finished", (status, path)))
        self.close()

    def close(self) -> None:
        """Send what is queued and stop the worker (idempotent)."""
        if self._worker.is_alive():
            self._events.put(_STOP)
            self._worker.join()
        count_again(getattr(self._worker, "pid", None))
        self._print_replies()

    def _print_replies(self) -> None:
        while self._replies is not None and not self._replies.empty():
            print(self._replies.get(), end="", file=sys.stderr, flush=True)


def _portable(value):
    """A candidate's result as the record the tracker reads, without its model."""
    if not hasattr(value, "model") or not hasattr(value, "metrics"):
        return value
    from trainforge.candidate_run import record

    light = {field: getattr(value, field) for field in RESULT_FIELDS}
    history = [dict(entry) for entry in getattr(value, "history", None) or []]
    return SimpleNamespace(**light, history=history, record=record(value))


def _child(make, events, replies, opened) -> None:
    """The child process: dies with its parent, leaves Ctrl-C to it, and sends what it would
    print up ``replies``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    sys.stdout = sys.stderr = _Replies(replies)
    try:
        _work(make, events, None, opened)
    finally:
        sys.stderr.flush()
        os._exit(0)  # no atexit handlers or buffers inherited from the run's process


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: Linux only
    except (OSError, AttributeError):
        pass


class _Replies:
    """A text stream whose lines go to the parent process."""

    def __init__(self, replies):
        self.replies, self.buffer = replies, ""

    def write(self, text: str) -> int:
        self.buffer += text
        if "\n" in self.buffer:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.buffer:
            self.replies.put(self.buffer)
            self.buffer = ""


def _work(make, events, replies, opened) -> None:
    try:
        tracker = make()
    except TrackingError as exc:
        print(f"warning: {exc}; training goes on without tracking", file=sys.stderr)
        tracker = None
    opened.set()
    while True:
        item = events.get()
        if item == _STOP:
            return
        if tracker is not None:
            event, args = item
            method = getattr(tracker, event, None)
            if method is not None:
                method(*args)
