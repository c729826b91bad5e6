"""When this process started, on the ``time.monotonic()`` clock: a time limit given on the
command line bounds the whole command, start-up and imports included."""

from __future__ import annotations

import os
import time

_IMPORTED = time.monotonic()


def process_started() -> float:
    """``time.monotonic()`` at this process's start (Linux: from /proc), else when this module
    was first imported."""
    try:
        with open("/proc/self/stat") as handle:
            # the command name (field 2) may hold spaces: count fields after its closing ")"
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return _IMPORTED
    return time.monotonic() - max(age, 0.0)
