"""What every tracker shares: a failure in logging stops that tracker, never the run."""

from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path


def guarded(event):
    """An event's logging: skipped once the tracker has stopped; any failure stops it (one
    warning, through the tracker's ``_stop``) and the run goes on."""

    @functools.wraps(event)
    def guarded_event(self, *args):
        if not self.enabled:
            return None
        try:
            return event(self, *args)
        except Exception as exc:  # noqa: BLE001 - any tracking failure must not end the run
            self._stop(exc)
            return None

    return guarded_event


def stopped(tracker, name: str, exc: Exception) -> None:
    """Switch ``tracker`` off with one warning naming it and the failure."""
    tracker.enabled = False
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    print(
        f"warning: {name} tracking stopped ({type(exc).__name__}: {message}); training goes "
        "on, the run folder has everything",
        file=sys.stderr,
    )


STEPS = ("epoch", "round")  # the step of an epoch's or round's logs, not a metric


def numbers(values: dict) -> dict[str, float]:
    """The finite numbers of ``values`` (booleans, strings and the step left out)."""
    found = {}
    for key, value in values.items():
        if key in STEPS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            found[str(key)] = float(value)
    return found


def read_json(path: Path) -> dict:
    """A JSON object from a file of the run folder, or {} when it is missing or not one."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
