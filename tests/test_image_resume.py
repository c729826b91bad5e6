"""SIGKILL the CNN (with augmentation) and the GAN (two optimizers) at random moments, also
inside checkpoint writes, and resume each time: final weights and history are bit-identical to
a run never interrupted (the engine's kill-and-resume test of tests/test_resume_kill.py)."""

from __future__ import annotations

import pytest
from resume_harness import campaign

pytestmark = pytest.mark.long  # minutes of kills per network: opt-in, `pytest -m long`


@pytest.mark.parametrize("kind", ["cnn", "gan"])
def test_kills_resume_to_bit_identical_weights(tmp_path, kind):
    result = campaign(tmp_path, kills=3, seed=7, kind=kind)
    assert sum(result.kills.values()) == 3
    history = result.reference["history"]
    assert len(history) == result.reference["epochs"] >= 4
    assert ("fid" if kind == "gan" else "val_accuracy") in history[-1]
    assert result.finals and result.identical == len(result.finals), [
        (f["sha256"][:12], f["epochs"], f["best_epoch"]) for f in result.finals
    ]
