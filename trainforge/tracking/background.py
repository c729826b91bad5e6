"""A tracker that works in a background thread, so tracking costs training no time.

Opening an MLflow store (importing mlflow, running its database migrations) and every logging
call take the tracker's thread, not the run's: events are queued in order and the thread sends
them on. ``run_finished`` waits until the queue is empty, so a run ends only after its tracking
run is complete. A tracker that cannot be opened, or fails later, prints one warning and the
run goes on (the run folder has everything).
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Callable

from trainforge.errors import TrackingError
from trainforge.events import EVENTS

_STOP = object()


class InBackground:
    """Forwards run events to ``make()``'s tracker, made and used in one background thread."""

    def __init__(self, make: Callable[[], object]):
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(
            target=self._work, args=(make,), name="trainforge-tracking", daemon=True
        )
        self._thread.start()

    def __getattr__(self, event: str):
        if event not in EVENTS:
            raise AttributeError(event)
        return lambda *args: self._queue.put((event, args))

    def run_finished(self, status: str, path: str) -> None:
        self._queue.put(("run_finished", (status, path)))
        self.close()

    def close(self) -> None:
        """Send what is queued and stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _work(self, make) -> None:
        try:
            tracker = make()
        except TrackingError as exc:
            print(f"warning: {exc}; training goes on without tracking", file=sys.stderr)
            tracker = None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if tracker is not None:
                event, args = item
                method = getattr(tracker, event, None)
                if method is not None:
                    method(*args)
