"""A corpus of hostile model bundles and checkpoints, and how loading each one ended.

Used by tests/test_hostile.py (a fast sample in the default suite) and benchmarks/hostile.py
(the whole corpus, with counts). Each bundle mutation is a function that takes a copy of a good
bundle and changes it the way an attacker or an accident could: byte flips, truncations,
swapped files, path entries leaving the folder, symbolic links, oversized network configs,
JSON fields of the wrong type, tree arrays whose indices point out of range (with bundle.json's
sha256 rewritten to match, as an attacker would), pickles where safetensors or skops files
belong. Loading a mutated bundle must end in a one-line refusal (BundleError) or in a model that
predicts; never a traceback, a signal, or a file read outside the bundle.

Each checkpoint mutation changes the newest checkpoint of an interrupted fit; resuming must
then fall back to an earlier checkpoint (or the start) and end with exactly the weights of a
fit that was never interrupted.
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import random
import select
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

OUTSIDE = "planted-outside.txt"  # a file beside the bundle that no load may read

# -- base bundles ------------------------------------------------------------------------------


def base_bundles(folder: Path) -> dict[str, Path]:
    """Train and save one bundle of each kind the corpus mutates, under ``folder``."""
    import trainforge
    from conftest import make_small_table

    table = make_small_table(200)
    models = {
        "logistic": ["logistic_regression"],
        "forest": [{"name": "random_forest", "n_estimators": 10}],
        "tree": [{"name": "decision_tree", "min_samples_leaf": 2}],
        "hgb": [{"name": "hist_gradient_boosting", "max_iter": 20}],
        "lightgbm": [{"name": "lightgbm", "n_estimators": 30}],
        "mlp": [{"name": "mlp", "max_epochs": 3}],
    }
    bundles = {}
    for kind, spec in models.items():
        result = trainforge.train(
            {"models": spec},
            data=table,
            target="y",
            output=folder / "runs" / kind,
            tracking=False,
            ensemble=False,
            quiet=True,
        )
        bundles[kind] = result.path / "candidates" / result.best_name / "model"
    bagged = trainforge.train(
        {"models": ["logistic_regression", "naive_bayes"]},
        data=table,
        target="y",
        folds=3,
        output=folder / "runs" / "bagged",
        tracking=False,
        quiet=True,
    )
    bundles["bagged"] = bagged.path / "candidates" / "logistic_regression" / "model"
    bundles["ensemble"] = bagged.path / "candidates" / "ensemble" / "model"
    table.drop(columns="y").to_csv(folder / "rows.csv", index=False)
    (folder / OUTSIDE).write_text("outside the bundle\n")
    return bundles


# -- bundle mutations --------------------------------------------------------------------------


def _info(folder: Path) -> dict:
    return json.loads((folder / "bundle.json").read_text(errors="replace"))


def _write_info(folder: Path, info: dict) -> None:
    (folder / "bundle.json").write_text(json.dumps(info))


def _rehash(folder: Path) -> None:
    """Rewrite bundle.json's sha256 values to match the files: what an attacker does."""
    from trainforge.data.read import file_sha256

    try:
        info = _info(folder)
    except ValueError:
        return  # bundle.json itself was damaged: nothing to rewrite
    if isinstance(info.get("files"), dict):
        info["files"] = {
            name: file_sha256(folder / name) if (folder / name).is_file() else digest
            for name, digest in info["files"].items()
        }
    _write_info(folder, info)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def flip_bytes(folder: Path, rng: random.Random) -> str:
    target = rng.choice(_files(folder))
    data = bytearray(target.read_bytes())
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    target.write_bytes(bytes(data))
    return f"flip bytes in {target.relative_to(folder)}"


def flip_and_rehash(folder: Path, rng: random.Random) -> str:
    said = flip_bytes(folder, rng)
    _rehash(folder)
    return said + ", sha256 rewritten"


def truncate(folder: Path, rng: random.Random) -> str:
    target = rng.choice(_files(folder))
    data = target.read_bytes()
    target.write_bytes(data[: rng.randrange(max(len(data), 1))])
    if rng.random() < 0.5:
        _rehash(folder)
    return f"truncate {target.relative_to(folder)}"


def swap_files(folder: Path, rng: random.Random) -> str:
    files = _files(folder)
    if len(files) < 2:
        return truncate(folder, rng)
    a, b = rng.sample(files, 2)
    first, second = a.read_bytes(), b.read_bytes()
    a.write_bytes(second)
    b.write_bytes(first)
    _rehash(folder)
    return f"swap {a.relative_to(folder)} and {b.relative_to(folder)}"


_WRONG = [None, [], {}, "x", 0, -1, 10**12, 1.5, True, [1, 2], {"a": 1}, "../../etc", "/etc"]


def wrong_type(folder: Path, rng: random.Random) -> str:
    info = _info(folder)
    key = rng.choice(sorted(info))
    info[key] = rng.choice(_WRONG)
    _write_info(folder, info)
    return f"bundle.json {key} = {info[key]!r}"


def path_entry(folder: Path, rng: random.Random) -> str:
    info = _info(folder)
    bad = rng.choice(
        [
            f"../{OUTSIDE}",
            "../" * 8 + "etc/hostname",
            "/etc/hostname",
            f"estimator/../../{OUTSIDE}",
            "model.skops/../../x",
        ]
    )
    field = rng.choice(["files", "weights", "members", "folds", "estimator"])
    if field == "files" and isinstance(info.get("files"), dict):
        info["files"][bad] = "0" * 64
    elif field == "weights" and "weights" in info:
        info["weights"] = {bad: 1.0}
    elif field == "members" and "members" in info:
        info["members"] = [bad]
    elif field == "estimator":
        info["estimator"] = rng.choice(["os.system", "builtins.eval", bad])
    else:
        info["files"] = {bad: "0" * 64}
    _write_info(folder, info)
    return f"bundle.json {field} names {bad!r}"


def symlink(folder: Path, rng: random.Random) -> str:
    target = rng.choice(_files(folder) + [p for p in folder.rglob("*") if p.is_dir()])
    outside = folder.parent.parent / OUTSIDE
    if target.is_dir():
        shutil.rmtree(target)
        os.symlink(folder.parent.parent, target)
    else:
        target.unlink()
        os.symlink(outside if rng.random() < 0.5 else "/etc/hostname", target)
    return f"symlink at {target.relative_to(folder)}"


def oversized_network(folder: Path, rng: random.Random) -> str:
    path = next(iter(folder.rglob("estimator.json")), None)
    if path is None or "config" not in json.loads(path.read_text()):
        return wrong_type(folder, rng)
    saved = json.loads(path.read_text())
    key = rng.choice([k for k in saved["config"] if isinstance(saved["config"][k], (int, list))])
    saved["config"][key] = [200000, 200000] if isinstance(saved["config"][key], list) else 10**7
    path.write_text(json.dumps(saved))
    _rehash(path.parent.parent if path.parent.name == "estimator" else folder)
    return f"estimator.json config {key} oversized"


def fitted_field(folder: Path, rng: random.Random) -> str:
    path = next(iter(folder.rglob("estimator.json")), None)
    if path is None:
        return wrong_type(folder, rng)
    saved = json.loads(path.read_text())
    key, value = rng.choice(
        [
            ("predict_proba", "x"),
            ("classes_", {"a": 1}),
            ("n_features_in_", "many"),
            ("__class__", "os.system"),
            ("history_", 7),
        ]
    )
    saved.setdefault("fitted", {})[key] = value
    path.write_text(json.dumps(saved))
    _rehash(folder if (folder / "estimator").is_dir() else path.parent.parent)
    return f"estimator.json fitted {key} = {value!r}"


def pickle_payload(folder: Path, rng: random.Random) -> str:
    """A pickle where a skops, safetensors or npz file belongs (loading must not unpickle)."""
    candidates = [
        p for p in _files(folder) if p.suffix in (".skops", ".safetensors", ".npz", ".json")
    ]
    target = rng.choice(candidates)
    target.write_bytes(pickle.dumps(_Payload()))
    _rehash(folder)
    return f"pickle as {target.relative_to(folder)}"


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/trainforge-pwned",))


def object_array_in_skops(folder: Path, rng: random.Random) -> str:
    """An ``.npy`` of dtype object (a pickle inside numpy's format) inside the skops zip."""
    skops = next(iter(folder.rglob("*.skops")), None)
    if skops is None:
        return pickle_payload(folder, rng)
    with zipfile.ZipFile(skops) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    arrays = [n for n in entries if n.endswith(".npy")]
    if not arrays:
        return flip_and_rehash(folder, rng)
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([_Payload()], dtype=object), allow_pickle=True)
    entries[rng.choice(arrays)] = buffer.getvalue()
    with zipfile.ZipFile(skops, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    _rehash(skops.parent)
    return f"object array in {skops.relative_to(folder)}"


def corrupt_tree(folder: Path, rng: random.Random) -> str:
    """Tree arrays whose child or feature indices point out of range, re-saved with their
    sha256 updated: a load that did not check them would crash at prediction."""
    skops_file = next((p for p in folder.rglob("model.skops")), None)
    npz = next(iter(folder.rglob("trees.npz")), None)
    if npz is not None:
        with np.load(npz, allow_pickle=False) as saved:
            arrays = {k: saved[k] for k in saved.files}
        nodes = arrays["nodes"].copy()
        histogram = "is_leaf" in nodes.dtype.names  # else a forest's (trainforge.models.forest)
        if histogram:
            split = np.flatnonzero(nodes["is_leaf"] == 0)
            fields, values = ["left", "right", "feature_idx"], [10**6, 10**6, 999]
        else:
            split = np.flatnonzero(nodes["left_child"] != -1)
            fields, values = ["left_child", "right_child", "feature"], [10**6, -7, 999]
        if len(split):
            index = rng.randrange(len(fields))
            nodes[fields[index]][rng.choice(split)] = values[index]
        arrays["nodes"] = nodes
        np.savez(npz, **arrays)
        _rehash(npz.parent.parent)
        return f"{'histogram' if histogram else 'forest'} tree indices out of range"
    if skops_file is None:
        return flip_and_rehash(folder, rng)
    import skops.io as sio

    from trainforge.bundle import TRUSTED_TYPES

    pipeline = sio.load(
        skops_file, trusted=TRUSTED_TYPES + sio.get_untrusted_types(file=skops_file)
    )
    trees = [obj for obj in _objects(pipeline) if type(obj).__name__ == "Tree"]
    if not trees:
        return flip_and_rehash(folder, rng)
    tree = rng.choice(trees)
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    split = np.flatnonzero(nodes["left_child"] != -1)
    if len(split):
        field = rng.choice(["left_child", "right_child", "feature"])
        nodes[field][rng.choice(split)] = rng.choice([10**6, -7, 0])
    state["nodes"] = nodes
    tree.__setstate__(state)
    sio.dump(pipeline, skops_file)
    _rehash(skops_file.parent)
    return "decision tree indices out of range"


def _objects(obj, seen=None, depth=0):
    seen = set() if seen is None else seen
    if depth > 10 or id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    items = obj if isinstance(obj, (list, tuple)) else getattr(obj, "__dict__", {}).values()
    if isinstance(obj, dict):
        items = obj.values()
    for item in items:
        if isinstance(item, (list, tuple, dict)) or type(item).__module__.startswith("sklearn"):
            yield from _objects(item, seen, depth + 1)


BUNDLE_MUTATIONS: dict[str, Callable[[Path, random.Random], str]] = {
    "flip": flip_bytes,
    "flip_rehash": flip_and_rehash,
    "truncate": truncate,
    "swap": swap_files,
    "wrong_type": wrong_type,
    "path_entry": path_entry,
    "symlink": symlink,
    "oversized": oversized_network,
    "fitted_field": fitted_field,
    "pickle": pickle_payload,
    "object_array": object_array_in_skops,
    "tree": corrupt_tree,
}


@dataclass
class Outcome:
    kind: str  # refused, loaded, crashed
    detail: str


# Loads run in processes forked from one that imported trainforge once (a "fork server"): a
# fresh interpreter per load spent about 3 s importing (skops lists scikit-learn's estimators,
# which imports torch), most of the hostile tests' time. Each load still has a process of its
# own, forked before any bundle was read: a segfault or a traceback ends only that process.
SERVER_SCRIPT = r"""
import json, os, sys, traceback
import skops.io, torch, trainforge, trainforge.bundle  # what loading a bundle imports
from trainforge.errors import TrainforgeError
print("ready", flush=True)
for line in sys.stdin:
    rows, bundle = json.loads(line)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 0
        try:
            trainforge.load(bundle).predict(rows)
            said = "LOADED"
        except TrainforgeError as exc:
            said = "REFUSED " + str(exc).splitlines()[0]
        except BaseException:
            said, code = "TRACEBACK " + traceback.format_exc()[-400:], 1
        os.write(write, said.encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        said = f"signal {os.WTERMSIG(status)}"
    elif os.WEXITSTATUS(status) != 0 and not said.startswith("TRACEBACK"):
        said = f"exit {os.WEXITSTATUS(status)}: {said}"
    print(json.dumps(said), flush=True)
"""
_server: subprocess.Popen | None = None


def _load_server() -> subprocess.Popen:
    """The fork server, started on first use and ended with this process."""
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its forks are killed with it (killpg)
        )
        if _server.stdout.readline().strip() != "ready":
            raise AssertionError(f"the load server did not start (exit {_server.wait()})")
        atexit.register(_stop_server, _server)
    return _server


def _stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def load_in_child(bundle: Path, rows: Path, timeout: float = 120) -> Outcome:
    """Load a bundle and predict in a process of its own: a segfault there is a result, not
    the end of the test run. A traceback or a signal is a crash."""
    server = _load_server()
    server.stdin.write(json.dumps([str(rows), str(bundle)]) + "\n")
    server.stdin.flush()
    if not select.select([server.stdout], [], [], timeout)[0]:
        _stop_server(server)
        raise AssertionError(f"loading {bundle} took over {timeout} s")
    said = json.loads(server.stdout.readline())
    if said.startswith(("LOADED", "REFUSED")):
        return Outcome(said.split(" ", 1)[0].lower(), said)
    return Outcome("crashed", said)


def load_all_in_child(bundles: list[Path], rows: Path, timeout: float = 120) -> list[Outcome]:
    """``load_in_child`` for each of ``bundles``."""
    return [load_in_child(bundle, rows, timeout) for bundle in bundles]


def load_in_process(bundle: Path, rows: Path) -> Outcome:
    import trainforge
    from trainforge.errors import TrainforgeError

    try:
        trainforge.load(bundle).predict(rows)
    except TrainforgeError as exc:
        return Outcome("refused", str(exc).splitlines()[0])
    except Exception as exc:  # noqa: BLE001 - what the corpus counts
        return Outcome("crashed", f"{type(exc).__name__}: {exc}")
    return Outcome("loaded", "")


def mutated_bundle(base: Path, work: Path, mutation: str, seed: int) -> tuple[Path, str]:
    """A copy of ``base`` under ``work`` changed by one mutation."""
    target = work / f"{mutation}-{seed}" / "model"
    shutil.copytree(base, target, symlinks=True)
    rng = random.Random(seed)
    said = BUNDLE_MUTATIONS[mutation](target, rng)
    return target, said


# -- checkpoints -------------------------------------------------------------------------------


def interrupted_fit(folder: Path, stop_at: int = 40):
    """An MLP fit with checkpoints every 5 steps, interrupted at step ``stop_at`` (several
    checkpoints are on disk), and the weights of the same fit never interrupted."""
    from trainforge.models.neural import MLPClassifier
    from trainforge.training.callbacks.base import Callback

    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)

    def model():
        return MLPClassifier(
            hidden_sizes=(16,),
            batch_size=32,
            max_epochs=6,
            patience=10,
            checkpoint_every_steps=5,
            random_state=0,
        )

    class Stop(Callback):
        name = "stop"

        def on_batch_end(self, loop):
            if loop.step >= stop_at:
                raise KeyboardInterrupt

    reference = model().fit(X, y)
    try:
        model().fit(X, y, checkpoint_dir=str(folder), callbacks=[Stop()])
    except KeyboardInterrupt:
        pass
    return X, y, model, _weights(reference)


def _weights(estimator) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in estimator.model_.state_dict().items()}


def _newest(folder: Path) -> Path:
    from trainforge.training.checkpoint import checkpoints

    return checkpoints(folder)[-1]


def _rehash_checkpoint(path: Path) -> None:
    from trainforge.data.read import file_sha256

    manifest = {n: file_sha256(path / n) for n in ("tensors.safetensors", "state.json")}
    (path / "manifest.json").write_text(json.dumps(manifest))


def ckpt_manifest_value(path: Path, rng: random.Random) -> str:
    value = rng.choice([[], None, 0, "x", {"tensors.safetensors": 5}])
    (path / "manifest.json").write_text(json.dumps(value))
    return f"manifest = {value!r}"


def ckpt_flip(path: Path, rng: random.Random) -> str:
    target = rng.choice([p for p in path.iterdir() if p.is_file()])
    data = bytearray(target.read_bytes())
    for _ in range(rng.randint(1, 6)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    target.write_bytes(bytes(data))
    return f"flip {target.name}"


def ckpt_flip_rehash(path: Path, rng: random.Random) -> str:
    """Bytes flipped and the manifest rewritten to match: tampering, not an accident. A flip
    inside tensor data leaves a valid checkpoint of other weights, which no unsigned
    manifest can tell from the real one."""
    name = rng.choice(["tensors.safetensors", "state.json"])
    data = bytearray((path / name).read_bytes())
    for _ in range(rng.randint(1, 6)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    (path / name).write_bytes(bytes(data))
    _rehash_checkpoint(path)
    return f"flip {name}, manifest rewritten"


def ckpt_state_key(path: Path, rng: random.Random) -> str:
    state = json.loads((path / "state.json").read_text())
    key = rng.choice(sorted(state))
    if rng.random() < 0.5:
        del state[key]
    else:
        state[key] = rng.choice(_WRONG)
    (path / "state.json").write_text(json.dumps(state))
    _rehash_checkpoint(path)
    return f"state.json {key} changed, manifest rewritten"


def ckpt_tensors(path: Path, rng: random.Random) -> str:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(path / "tensors.safetensors")
    key = rng.choice(sorted(tensors))
    choice = rng.random()
    if choice < 0.4:
        tensors[key] = torch.zeros(tuple(s + 3 for s in tensors[key].shape) or (3,))
    elif choice < 0.7:
        tensors[f"{key}.renamed"] = tensors.pop(key)
    else:
        del tensors[key]
    save_file(tensors, path / "tensors.safetensors")
    _rehash_checkpoint(path)
    return f"tensor {key} changed, manifest rewritten"


def ckpt_pickle(path: Path, rng: random.Random) -> str:
    name = rng.choice(["tensors.safetensors", "state.json"])
    (path / name).write_bytes(pickle.dumps(_Payload()))
    _rehash_checkpoint(path)
    return f"pickle as {name}, manifest rewritten"


def ckpt_truncate(path: Path, rng: random.Random) -> str:
    target = rng.choice([p for p in path.iterdir() if p.is_file()])
    data = target.read_bytes()
    target.write_bytes(data[: rng.randrange(max(len(data), 1))])
    return f"truncate {target.name}"


CHECKPOINT_MUTATIONS = {
    "manifest": ckpt_manifest_value,
    "flip": ckpt_flip,
    "flip_rehash": ckpt_flip_rehash,
    "state": ckpt_state_key,
    "tensors": ckpt_tensors,
    "pickle": ckpt_pickle,
    "truncate": ckpt_truncate,
}


def resume_mutated(work: Path, mutation: str, seed: int) -> Outcome:
    """Interrupt a fit, mutate its newest checkpoint, resume: the result must be the weights of
    a fit never interrupted (a fallback to an earlier checkpoint, or to the start)."""
    import warnings

    from trainforge.errors import CheckpointError

    folder = work / f"ckpt-{mutation}-{seed}"
    X, y, model, reference = interrupted_fit(folder, stop_at=20 + seed % 40)
    said = CHECKPOINT_MUTATIONS[mutation](_newest(folder), random.Random(seed))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resumed = model().fit(X, y, checkpoint_dir=str(folder), resume=True)
    except CheckpointError as exc:  # a clean refusal: no checkpoint there is this model's
        return Outcome("refused", f"{said}: {exc}")
    except Exception as exc:  # noqa: BLE001 - what the corpus counts
        return Outcome("crashed", f"{said}: {type(exc).__name__}: {exc}")
    same = all(np.array_equal(reference[k], v) for k, v in _weights(resumed).items())
    return Outcome("fallback" if same else "wrong", said)
