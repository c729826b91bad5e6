"""Kill-and-resume at scale: SIGKILL training at N random moments (a third of them inside
checkpoint writes), resume each time, and count finished runs whose final weights, history and
early-stopping epoch equal those of a run never interrupted.

    .venv/bin/python benchmarks/kill_resume.py --kills 200 --write

The harness is the one tests/test_resume_kill.py runs with 20 kills (tests/resume_harness.py).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness lives beside the test that uses it

from resume_harness import campaign  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Kill and resume: bit-identical weights after SIGKILL"


def report(kills: int, seed: int) -> str:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = campaign(Path(folder), kills=kills, seed=seed)
    minutes = (time.perf_counter() - started) / 60
    modes = ", ".join(f"{mode}: {count}" for mode, count in result.kills.items())
    import torch

    return f"""{SECTION}

- Command: `.venv/bin/python benchmarks/kill_resume.py --kills {kills} --seed {seed} --write`
- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; {minutes:.1f} minutes
- Machine: {len(__import__("os").sched_getaffinity(0))} cores, Python {platform.python_version()},
  torch {torch.__version__}
- The run: an MLP (64, 32) on 1,500 x 12 synthetic rows, batches of 32, checkpoints every 7
  steps and every epoch, early stopping with patience 3 (the reference stops at epoch
  {result.reference["epochs"]}, best epoch {result.reference["best_epoch"]}).
- Kills: {sum(result.kills.values())} ({modes}); "write" lands while a checkpoint folder is
  being moved into place, "manifest" while its manifest is being written.
- Runs finished after being killed: {len(result.finals)}; with sha256, history and
  early-stopping epoch identical to the uninterrupted run: **{result.identical} of
  {len(result.finals)}**.
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    section = report(args.kills, args.seed)
    print(section)
    if args.write:
        text = RESULTS.read_text()
        start = text.find(SECTION)
        if start < 0:
            text = text.rstrip("\n") + "\n\n" + section
        else:
            end = text.find("\n## ", start + len(SECTION))
            text = text[:start] + section + ("" if end < 0 else text[end:])
        RESULTS.write_text(text)
