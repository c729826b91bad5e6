"""SIGKILL at random moments (also inside checkpoint writes), resume each time: the final
weights, history and early-stopping epoch equal those of a run never interrupted. Five kills
run by default; the 20-kill campaign is opt-in (pytest -m long), as is benchmarks/kill_resume.py
with 200."""

from __future__ import annotations

import pytest
from resume_harness import KILL_MODES, campaign


@pytest.mark.parametrize(
    "kills, seed", [(5, 2), pytest.param(20, 2026, marks=pytest.mark.long, id="20-long")]
)
def test_kills_resume_to_bit_identical_weights(tmp_path, kills, seed):
    result = campaign(tmp_path, kills=kills, seed=seed)
    assert sum(result.kills.values()) == kills
    assert all(result.kills[mode] > 0 for mode in KILL_MODES), result.kills
    assert result.reference["best_epoch"] < result.reference["epochs"]  # it stopped early
    assert result.finals and result.identical == len(result.finals), [
        (f["sha256"][:12], f["epochs"], f["best_epoch"]) for f in result.finals
    ]
