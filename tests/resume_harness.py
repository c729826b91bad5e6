"""Kill training with SIGKILL at random moments, resume it each time, compare with a run that was
never interrupted. Used by tests/test_resume_kill.py (20 kills) and benchmarks/kill_resume.py
(200 or more).

The child (``python tests/resume_harness.py FOLDER``) trains an MLP with checkpoints every few
steps and every epoch, resuming from FOLDER. It prints ``training`` when fit starts, and
``write`` / ``manifest`` just before the two risky moments of a checkpoint write (moving the
folder into place, writing the manifest); the wrappers pause briefly there so that a kill can
land inside. At the end it prints one JSON line: the sha256 of the final weights, the history
and the early-stopping epoch.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve()
KILL_MODES = ("anytime", "write", "manifest")


def child(folder: Path, kind: str = "mlp") -> None:
    import numpy as np

    import trainforge.training.checkpoint as checkpoint
    from trainforge.models.neural import MLPClassifier

    def marked(name, function):
        def wrapper(*args, **kwargs):
            print(name, flush=True)
            time.sleep(0.004)
            return function(*args, **kwargs)

        return wrapper

    checkpoint.fsync_tree = marked("write", checkpoint.fsync_tree)
    checkpoint.write_json = marked("manifest", checkpoint.write_json)
    if kind != "mlp":
        return _fit_image_model(folder, kind)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1500, 12)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(scale=0.8, size=1500) > 0.5).astype(int)
    model = MLPClassifier(
        hidden_sizes=(64, 32),
        dropout=0.2,
        batch_size=32,
        max_epochs=60,
        patience=3,
        checkpoint_every_steps=7,
        random_state=0,
    )
    print("training", flush=True)
    model.fit(X, y, checkpoint_dir=str(folder), resume=True)
    _report(model)


def _fit_image_model(folder: Path, kind: str) -> None:
    """The CNN (augmentation on) or the DCGAN (two optimizers) on small synthetic images."""
    import numpy as np

    from trainforge.models.gan import GAN
    from trainforge.models.image import CNNClassifier

    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 240)
    X = rng.normal(60, 20, size=(240, 8, 8))
    for row, label in enumerate(y):
        X[row, 2 * label : 2 * label + 3, 1:7] += 120
    runtime = dict(checkpoint_dir=str(folder), resume=True)
    if kind == "cnn":
        model = CNNClassifier(
            channels=(8, 16), batch_size=32, max_epochs=8, checkpoint_every_steps=4,
            random_state=0,
        )  # fmt: skip
    else:
        model = GAN(
            latent_dim=8, width=8, batch_size=32, max_epochs=5, quality_samples=64,
            checkpoint_every_steps=4, random_state=0,
        )  # fmt: skip
        runtime["sample_dir"] = str(folder / "grids")
    print("training", flush=True)
    model.fit(X, y if kind == "cnn" else None, **runtime)
    _report(model)


def _report(model) -> None:
    import hashlib

    digest = hashlib.sha256()
    for key, value in sorted(model.model_.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    print(
        json.dumps(
            {
                "sha256": digest.hexdigest(),
                "history": model.history_,
                "best_epoch": model.best_epoch_,
                "epochs": model.n_epochs_,
            }
        ),
        flush=True,
    )


@dataclass
class Campaign:
    """What a kill campaign saw."""

    reference: dict
    kills: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KILL_MODES, 0))
    finals: list[dict] = field(default_factory=list)

    @property
    def identical(self) -> int:
        return sum(final == self.reference for final in self.finals)


def _start(folder: Path, kind: str = "mlp") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE), str(folder), kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def run_to_end(folder: Path, kind: str = "mlp") -> tuple[dict, float]:
    """Run the child until it finishes; its result and its training seconds."""
    process = _start(folder, kind)
    started = None
    for line in process.stdout:
        if line.strip() == "training":
            started = time.perf_counter()
        elif line.startswith("{"):
            result = json.loads(line)
    process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the harness child failed with exit code {process.returncode}")
    return result, time.perf_counter() - started


def _kill_once(folder: Path, mode: str, delay: float, kind: str = "mlp") -> bool:
    """Start a resuming child and SIGKILL it; False if it finished before the kill."""
    process = _start(folder, kind)
    for line in process.stdout:
        marker = line.strip()
        if marker == "training" and mode == "anytime":
            time.sleep(delay)
            break
        if marker == mode and random.random() < 0.35:  # not always the first write
            time.sleep(random.uniform(0, 0.004))
            break
        if marker.startswith("{"):
            process.wait()
            return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.returncode == -signal.SIGKILL


def campaign(workdir: Path, kills: int, seed: int = 0, kind: str = "mlp") -> Campaign:
    """Kill ``kills`` times across runs (a run is killed until it finishes, then a new one
    starts), finishing each run by resuming; every finished run is compared to a reference.

    ``kind`` is the model trained: ``mlp`` (a table), ``cnn`` or ``gan`` (small images)."""
    random.seed(seed)
    reference, seconds = run_to_end(workdir / "reference", kind)
    result = Campaign(reference)
    run = 0
    while sum(result.kills.values()) < kills:
        folder = workdir / f"run-{run}"
        for _ in range(kills - sum(result.kills.values())):
            mode = random.choice(KILL_MODES)
            if not _kill_once(folder, mode, random.uniform(0, seconds / 6), kind):
                break
            result.kills[mode] += 1
        result.finals.append(run_to_end(folder, kind)[0])
        run += 1
    return result


if __name__ == "__main__":
    child(Path(sys.argv[1]), *sys.argv[2:3])
