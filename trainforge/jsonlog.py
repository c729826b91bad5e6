"""``--log-format json``: every run event as one JSON object per line on standard error.

Each line has ``event`` and ``time`` (UTC, ISO 8601) plus the event's fields; NaN and infinite
numbers become null, so any JSON parser reads the stream.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone


class JsonObserver:
    """Writes run events as JSON lines, for machines watching a run.

    Args:
        stream: where lines go (default: standard error; results stay on standard output).
        quiet: only notices, warnings, finished candidates and the run's end.
    """

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream
        self.quiet = quiet

    def _emit(self, event: str, **fields) -> None:
        record = {"event": event, "time": datetime.now(timezone.utc).isoformat(), **fields}
        stream = self.stream or sys.stderr
        stream.write(json.dumps(_clean(record), default=str) + "\n")
        stream.flush()

    def run_started(self, run_id: str, path: str) -> None:
        self._emit("run_started", run=run_id, path=path)

    def notice(self, message: str) -> None:
        self._emit("notice", message=message)

    def warning(self, message: str) -> None:
        self._emit("warning", message=message)

    def candidate_started(self, index: int, total: int, name: str) -> None:
        if not self.quiet:
            self._emit("candidate_started", candidate=name, index=index, total=total)

    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        if not self.quiet:
            logs = {k: v for k, v in metrics.items() if k != "epoch"}
            self._emit("epoch_end", candidate=name, epoch=epoch, total=total, metrics=logs)

    def candidate_finished(self, index: int, total: int, result) -> None:
        self._emit(
            "candidate_finished",
            candidate=result.name,
            index=index,
            total=total,
            status=result.status,
            metrics=result.metrics,
            fit_seconds=round(result.fit_seconds, 3),
            error=result.error,
        )

    def run_finished(self, status: str, path: str) -> None:
        self._emit("run_finished", status=status, path=path)


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
