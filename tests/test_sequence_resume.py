"""SIGKILL an RNN and InceptionTime (series) and a Transformer (text, its tokenizer trained again in every
process) at random moments, also inside checkpoint writes, and resume each time: the final
weights, predictions, history and early-stopping epoch equal those of a run never interrupted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import resume_harness

CHILD = Path(__file__).resolve().parent / "sequence_resume_child.py"


pytestmark = pytest.mark.long  # minutes of kills per network: opt-in, `pytest -m long`


@pytest.mark.parametrize("family", ["rnn", "transformer", "inception_time"])
def test_kills_resume_to_bit_identical_weights(family, tmp_path, monkeypatch):
    monkeypatch.setattr(resume_harness, "HERE", CHILD)
    result = resume_harness.campaign(tmp_path / family, kills=6, seed=7)
    assert sum(result.kills.values()) == 6
    assert result.reference["best_epoch"] < result.reference["epochs"]  # it stopped early
    assert result.finals and result.identical == len(result.finals), [
        (f["sha256"][:12], f["epochs"], f["best_epoch"]) for f in result.finals
    ]
