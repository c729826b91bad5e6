"""What a run tells the outside world while it works.

The runner calls an observer; the console display, and later tracking, implement it. Nothing in
the runner prints.
"""

from __future__ import annotations

from typing import Protocol


class RunObserver(Protocol):
    def run_started(self, run_id: str, path: str) -> None: ...

    def notice(self, message: str) -> None: ...

    def candidate_started(self, index: int, total: int, name: str) -> None: ...

    def candidate_finished(self, index: int, total: int, result) -> None: ...


class SilentObserver:
    """Ignores every event (the default in Python; the CLI shows progress)."""

    def run_started(self, run_id: str, path: str) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def candidate_started(self, index: int, total: int, name: str) -> None:
        pass

    def candidate_finished(self, index: int, total: int, result) -> None:
        pass
