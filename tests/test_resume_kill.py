"""SIGKILL at 20 random moments (also inside checkpoint writes), resume each time: the final
weights, history and early-stopping epoch equal those of a run never interrupted."""

from __future__ import annotations

from resume_harness import KILL_MODES, campaign


def test_twenty_kills_resume_to_bit_identical_weights(tmp_path):
    result = campaign(tmp_path, kills=20, seed=2026)
    assert sum(result.kills.values()) == 20
    assert all(result.kills[mode] > 0 for mode in KILL_MODES), result.kills
    assert result.reference["best_epoch"] < result.reference["epochs"]  # it stopped early
    assert result.finals and result.identical == len(result.finals), [
        (f["sha256"][:12], f["epochs"], f["best_epoch"]) for f in result.finals
    ]
