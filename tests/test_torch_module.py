"""Your own torch module (trainforge.models.torch_module): a builder named by import path trains
on trainforge's loop, resumes bit-identically, and is rebuilt on load only from a module the
loader trusts; an untrusted one is never imported."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("torch", reason="the torch extra is not installed")

import trainforge  # noqa: E402
from conftest import DATA  # noqa: E402
from trainforge.errors import BundleError, CheckpointWarning, SpecError  # noqa: E402
from trainforge.models.torch_module import TorchModuleClassifier  # noqa: E402

CREDIT = DATA / "tabular" / "credit_g.tsv.gz"
# The seed document's network (Dense 128 / Dropout 0.3 / Dense 64 / Dropout 0.2 / output) as a
# builder; importing the module leaves a mark, so a test can see whether it was imported.
BUILDER = """
import os
from pathlib import Path

from torch import nn

Path(os.environ["SEED_NETS_MARK"]).write_text("imported")


def seed_net(n_inputs, n_outputs, hidden=64):
    return nn.Sequential(
        nn.Linear(n_inputs, 128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, hidden), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(hidden, n_outputs),
    )
"""


@pytest.fixture
def builder(tmp_path, monkeypatch):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "seed_nets.py").write_text(BUILDER)
    mark = tmp_path / "imported.txt"
    monkeypatch.setenv("SEED_NETS_MARK", str(mark))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.syspath_prepend(str(folder))
    yield mark
    sys.modules.pop("seed_nets", None)


def _cli(*args, cwd):
    done = subprocess.run(
        [sys.executable, "-m", "trainforge", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, env=dict(os.environ),
    )  # fmt: skip
    return done


def test_a_builder_trains_from_yaml_and_loads_only_when_trusted(builder, tmp_path):
    spec = {
        "data": {"train": str(CREDIT), "target": "target"},
        "models": [
            "baseline",
            {"name": "torch_module", "builder": "seed_nets:seed_net", "max_epochs": 12,
             "builder_args": {"hidden": 32}},
        ],
        "ensemble": False,
        "tracking": {"enabled": False},
    }  # fmt: skip
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = _cli("train", "spec.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = tmp_path / done.stdout.strip().splitlines()[-1].removeprefix("run: ")
    board = pd.read_csv(run / "leaderboard.csv").set_index("candidate")
    assert board.loc["torch_module", "status"] == "ok"
    assert board.loc["torch_module", "roc_auc"] > board.loc["baseline", "roc_auc"] + 0.15
    folder = run / "candidates" / "torch_module" / "model"
    saved = (folder / "estimator" / "estimator.json").read_text()
    assert '"builder": "seed_nets:seed_net"' in saved and '"hidden": 32' in saved
    rows = pd.read_csv(CREDIT, sep="\t").drop(columns="target").head(100)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    builder.unlink()  # the training process imported it; a fresh one must not, untrusted
    refused = _cli("predict", folder, tmp_path / "rows.csv", cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "refusing to import seed_nets unless you trust it" in refused.stderr
    assert not builder.exists()  # nothing of the module ran
    trusted = _cli("predict", folder, tmp_path / "rows.csv", "--trust", "seed_nets", cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert builder.exists()
    fresh = pd.read_csv(io.StringIO(trusted.stdout))
    here = trainforge.load(folder, trust=["seed_nets"]).predict_proba(rows)
    columns = [c for c in fresh.columns if c.startswith("proba_")]
    assert np.allclose(fresh[columns].to_numpy(), here.to_numpy(), atol=1e-6)
    with pytest.raises(BundleError, match="trust=\\['seed_nets'\\]"):
        trainforge.load(folder)


def _digest(model) -> str:
    state = model.model_.state_dict()
    return hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()


def test_an_interrupted_fit_resumes_to_the_weights_of_one_never_interrupted(builder, tmp_path):
    frame = pd.read_csv(CREDIT, sep="\t").select_dtypes("number").head(400)
    X, y = frame.drop(columns="target", errors="ignore").to_numpy(np.float32), np.arange(400) % 2
    settings = dict(builder="seed_nets:seed_net", max_epochs=6, patience=6, batch_size=64,
                    checkpoint_every_steps=2, random_state=0)  # fmt: skip
    whole = TorchModuleClassifier(**settings).fit(X, y, checkpoint_dir=str(tmp_path / "whole"))

    def stop(step, logs):  # during the fourth epoch
        if step >= 3:
            raise KeyboardInterrupt

    folder = str(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        TorchModuleClassifier(**settings).fit(X, y, checkpoint_dir=folder, on_epoch=stop)
    resumed = TorchModuleClassifier(**settings).fit(X, y, checkpoint_dir=folder, resume=True)
    assert resumed.history_ == whole.history_
    assert _digest(resumed) == _digest(whole)


def test_a_builder_given_as_a_function_in_python(builder, tmp_path):
    import seed_nets

    entry = trainforge.TorchModel(build=seed_nets.seed_net, max_epochs=5)
    assert entry == {"name": "torch_module", "builder": "seed_nets:seed_net", "max_epochs": 5}
    with pytest.raises(SpecError, match="not a lambda"):
        trainforge.TorchModel(build=lambda n_inputs, n_outputs: None)


def test_torch_module_without_a_builder_is_a_one_line_spec_error(tmp_path):
    with pytest.raises(SpecError, match=r"models\[0\].builder: torch_module needs builder"):
        trainforge.train(
            data=str(CREDIT), target="target", models=["torch_module"], output=tmp_path
        )
    with pytest.raises(SpecError, match=r"models\[0\].builder: expected package.module:function"):
        trainforge.train(
            data=str(CREDIT), target="target", output=tmp_path,
            models=[{"name": "torch_module", "builder": "seed_nets.seed_net"}],
        )  # fmt: skip
    assert not any(tmp_path.iterdir())  # refused before a run folder


KERAS_BUILDER = """
import keras


def seed_net(n_inputs, n_outputs, hidden=64):
    return keras.Sequential([
        keras.Input((n_inputs,)),
        keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.3),
        keras.layers.Dense(hidden, activation="relu"), keras.layers.Dropout(0.2),
        keras.layers.Dense(n_outputs),
    ])
"""


def test_a_keras_builder_trains_resumes_bit_identically_and_reloads(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("keras") is None:  # not imported here: trainforge picks its backend
        pytest.skip("the keras extra is not installed")
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "keras_seed.py").write_text(KERAS_BUILDER)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    settings = dict(builder="keras_seed:seed_net", max_epochs=6, patience=6, batch_size=64,
                    checkpoint_every_steps=2, random_state=0)  # fmt: skip
    whole = TorchModuleClassifier(**settings).fit(X, y, checkpoint_dir=str(tmp_path / "whole"))
    again = TorchModuleClassifier(**settings).fit(X, y)
    assert _digest(again) == _digest(whole)  # seeded: Keras' dropout generators too
    assert (whole.predict(X) == y).mean() > 0.85

    def stop(step, logs):
        if step >= 3:
            raise KeyboardInterrupt

    cut = str(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        TorchModuleClassifier(**settings).fit(X, y, checkpoint_dir=cut, on_epoch=stop)
    with warnings.catch_warnings():  # every checkpoint restores (none skipped with a warning)
        warnings.simplefilter("error", CheckpointWarning)
        resumed = TorchModuleClassifier(**settings).fit(X, y, checkpoint_dir=cut, resume=True)
    assert resumed.history_ == whole.history_ and _digest(resumed) == _digest(whole)
    names = whole.save_files(tmp_path / "saved")
    assert sorted(names) == ["estimator.json", "weights.safetensors"]
    np.save(tmp_path / "X.npy", X)
    script = (
        "import numpy as np, sys; from pathlib import Path\n"
        "from trainforge.bundle import trusting\n"
        "from trainforge.models.torch_module import TorchModuleClassifier as C\n"
        f"with trusting(['keras_seed']): m = C.load_files(Path({str(tmp_path / 'saved')!r}))\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, m.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), whole.predict_proba(X), atol=1e-6)
    assert not (tmp_path / "home" / ".keras").exists()  # Keras' config went elsewhere
    # a run that imports Keras first keeps Keras' config in the run folder
    pd.DataFrame(X).assign(y=y).to_csv(tmp_path / "xy.csv", index=False)
    models = [{"name": "torch_module", "builder": "keras_seed:seed_net", "max_epochs": 1}]
    spec = {"data": {"train": "xy.csv", "target": "y"}, "models": models, "ensemble": False}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = _cli("train", "spec.yaml", "--no-tracking", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = tmp_path / done.stdout.strip().splitlines()[-1].removeprefix("run: ")
    assert "backend" in json.loads((run / "keras" / "keras.json").read_text())
    assert not (tmp_path / "home" / ".keras").exists()


@pytest.mark.long  # 42 s: four CLI runs; the in-process interruptions above stay in the default
def test_torch_and_keras_builders_killed_mid_fit_resume_bit_identically(builder, tmp_path):
    """One CLI run trains the seed network as a torch builder and as a Keras builder; it is
    killed with SIGKILL inside each fit in turn (the second kill lands in the resumed run), and
    the resumed run's weights equal a run's that was never interrupted."""
    import importlib.util
    import signal
    import time

    if importlib.util.find_spec("keras") is None:
        pytest.skip("the keras extra is not installed")
    (tmp_path / "code" / "keras_seed.py").write_text(KERAS_BUILDER)
    settings = {"max_epochs": 5, "patience": 5, "batch_size": 32, "checkpoint_every_steps": 4}
    spec = {
        "data": {"train": str(CREDIT), "target": "target"},
        "models": [
            {"name": "torch_module", "builder": "seed_nets:seed_net", **settings},
            {"name": "torch_module", "builder": "keras_seed:seed_net", **settings},
        ],
        "ensemble": False,
        "tracking": {"enabled": False},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    whole = _cli("train", "spec.yaml", "--quiet", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    whole_run = tmp_path / whole.stdout.strip().splitlines()[-1].removeprefix("run: ")

    def killed_in(name: str, *args: str) -> None:
        child = subprocess.Popen(
            [sys.executable, "-m", "trainforge", *args, "--quiet"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ), start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            steps = (tmp_path / "killed").glob(f"*/candidates/{name}/checkpoints/fold-0/step-*")
            if len(list(steps)) >= 2:
                os.killpg(child.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        child.wait()
        assert child.returncode == -signal.SIGKILL, f"{name}'s fit ended before the kill"

    killed_in("torch_module", "train", "spec.yaml", "--out", "killed")
    (run,) = (tmp_path / "killed").glob("*/manifest.json")
    killed_in("torch_module_2", "resume", str(run.parent))
    done = _cli("resume", run.parent, "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("torch_module", "torch_module_2"):
        weights = f"candidates/{name}/model/estimator/weights.safetensors"
        assert (run.parent / weights).read_bytes() == (whole_run / weights).read_bytes(), name
