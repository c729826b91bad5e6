"""Benchmark on one CUDA GPU (issue 16), in one script that finishes in under five minutes.

Four parts, one table each:

1. families: every neural family (MLP, CNN with pooled_size 7, RNN, Transformer, GAN) trains
   and predicts on the GPU with torch's deterministic algorithms on (the default), and the MLP
   trained there predicts on the CPU within 1e-5 of its GPU probabilities;
2. resume: each family's fit is interrupted in process at a step (right after a checkpoint)
   and resumed; the final weights must equal an uninterrupted fit's, bit for bit, with the
   CUDA graph on where the family uses it;
3. speed: an MLP 128-64 with dropout 0.1, Adam, 180,000 x 50 rows on the GPU: trainforge's
   estimator (CUDA graph on, validation and early stopping included) against the plain eager
   loop a tutorial shows, at batches 32, 256 and 4,096, in float32 and bf16, training rows per
   second, both measured in this process;
4. fashion: the default CNN on Fashion-MNIST (../shared/data/images/fashion_mnist.npz), test
   accuracy and training time.

Usage (on a machine with a GPU):
    .venv/bin/python benchmarks/gpu.py            # prints the tables
    .venv/bin/python benchmarks/gpu.py --write    # and puts them in benchmarks/RESULTS.md
    .venv/bin/python benchmarks/gpu.py --device cpu --quick   # a smoke run of the script
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
FASHION = ROOT.parent / "shared" / "data" / "images" / "fashion_mnist.npz"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
HEADING = "## GPU: families, resume, step speed and the CNN on one GPU (benchmarks/gpu.py)"


# -- data and estimators ----------------------------------------------------------------------


def _table(n=600, features=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)


def _images(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(60, 20, size=(n, 16, 16))
    for row, label in enumerate(y):
        X[row, 4 * label : 4 * label + 5, 2:14] += 120
    return X, y


def _series(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(24)
    X = np.stack([np.sin(t * (0.3 + 0.5 * label)) for label in y])[:, :, None]
    return (X + rng.normal(scale=0.2, size=X.shape)).astype(np.float32), y


def _texts(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    words = [["free", "win", "cash"], ["lunch", "later", "see"]]
    return np.array([" ".join(rng.choice(words[label], 5)) for label in y], dtype=object), y


def _family(name: str, device: str, **extra):
    from trainforge.models.gan import GAN
    from trainforge.models.image import CNNClassifier
    from trainforge.models.neural import MLPClassifier
    from trainforge.models.sequence import RNNClassifier, TransformerClassifier

    common = {"random_state": 0, "device": device, **extra}
    if name == "mlp":
        return MLPClassifier(hidden_sizes=(64, 32), batch_size=32, max_epochs=6, **common), _table()
    if name == "cnn":
        model = CNNClassifier(
            channels=(8, 16), pooled_size=7, batch_size=32, max_epochs=4, **common
        )
        return model, _images()
    if name == "rnn":
        return RNNClassifier(hidden_size=16, batch_size=32, max_epochs=4, **common), _series()
    if name == "transformer":
        model = TransformerClassifier(d_model=16, heads=2, batch_size=32, max_epochs=4, **common)
        return model, _texts()
    model = GAN(latent_dim=8, width=8, batch_size=32, max_epochs=3, quality_samples=64, **common)
    return model, (_table()[0], None)


FAMILIES = ["mlp", "cnn", "rnn", "transformer", "gan"]


def _weights_sha(model) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.model_.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def _fit(model, data, **runtime):
    X, y = data
    return model.fit(X, **runtime) if y is None else model.fit(X, y, **runtime)


# -- 1. families ------------------------------------------------------------------------------


def families(device: str) -> list[str]:
    rows = ["| family | trains and predicts | seconds | note |", "|---|---|---|---|"]
    for name in FAMILIES:
        model, data = _family(name, device)
        started = time.perf_counter()
        try:
            _fit(model, data)
            note = ""
            if name == "gan":
                model.sample(4, random_state=0)
            else:
                proba = model.predict_proba(data[0])
                if name == "mlp":
                    note = f"CPU reload within {_cpu_difference(model, data[0], proba):.1e}"
            rows.append(f"| {name} | yes | {time.perf_counter() - started:.1f} | {note} |")
        except Exception as exc:  # noqa: BLE001 - the table reports it
            rows.append(f"| {name} | **no** | | {type(exc).__name__}: {str(exc)[:120]} |")
    return rows


def _cpu_difference(model, X, proba) -> float:
    import tempfile

    from trainforge.models.neural import MLPClassifier

    with tempfile.TemporaryDirectory() as folder:
        model.save_files(Path(folder))
        on_cpu = MLPClassifier.load_files(Path(folder))
    return float(np.abs(on_cpu.predict_proba(X) - proba).max())


# -- 2. resume --------------------------------------------------------------------------------


def resume(device: str) -> list[str]:
    import tempfile

    import trainforge.training.loop as loop_module

    rows = ["| family | interrupted at step | resumed = uninterrupted |", "|---|---|---|"]
    original = loop_module._each
    for name in FAMILIES:
        model, data = _family(name, device)
        reference = _weights_sha(_fit(model, data))
        stop_at = 13

        def interrupting(loop, hook, *args):
            original(loop, hook, *args)
            if hook == "on_batch_end" and loop.step == stop_at:
                raise KeyboardInterrupt

        with tempfile.TemporaryDirectory() as folder:
            first, _ = _family(name, device, checkpoint_every_steps=13)
            loop_module._each = interrupting
            try:
                _fit(first, data, checkpoint_dir=folder)
            except KeyboardInterrupt:
                pass
            finally:
                loop_module._each = original
            again, _ = _family(name, device, checkpoint_every_steps=13)
            same = _weights_sha(_fit(again, data, checkpoint_dir=folder, resume=True)) == reference
        rows.append(f"| {name} | {stop_at} | {'yes' if same else '**no**'} |")
    return rows


# -- 3. speed ---------------------------------------------------------------------------------


def speed(device: str, quick: bool) -> list[str]:
    from trainforge.models.neural import MLPClassifier

    n, features = (18_000, 50) if quick else (180_000, 50)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = (X[:, :5].sum(axis=1) > 0).astype(int)
    rows = [
        "| batch | precision | plain loop rows/s | trainforge rows/s | ratio |",
        "|---|---|---|---|---|",
    ]
    for batch in (32, 256, 4096):
        rows_needed = min(n, (300 if quick else 3000) * batch)
        epochs = max(2, -(-rows_needed * 2 // n))
        used = X[: min(n, rows_needed)], y[: min(n, rows_needed)]
        for precision in ("32", "bf16"):
            plain = _plain_loop(*used, batch, epochs, precision, device)
            model = MLPClassifier(
                hidden_sizes=(128, 64),
                dropout=0.1,
                optimizer="adam",
                weight_decay=0.0,
                batch_size=batch,
                max_epochs=epochs,
                patience=epochs + 1,
                schedule=None,
                precision=precision,
                device=device,
                random_state=0,
            )
            started = time.perf_counter()
            model.fit(*used)
            _sync(device)
            seconds = time.perf_counter() - started
            ours = 0.9 * len(used[0]) * model.n_epochs_ / seconds  # 10% is validation
            rows.append(
                f"| {batch:,} | {precision} | {plain:,.0f} | {ours:,.0f} | {ours / plain:.2f}x |"
            )
    return rows


def _plain_loop(X, y, batch, epochs, precision, device) -> float:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 128),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(64, 2),
    ).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    X_t = torch.as_tensor(X, device=device)
    y_t = torch.as_tensor(y, device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X_t), device=device)
        for start in range(0, len(X_t), batch):
            index = order[start : start + batch]
            with torch.autocast(torch.device(device).type, dtype, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(net(X_t[index]), y_t[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    _sync(device)
    return len(X_t) * epochs / (time.perf_counter() - started)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# -- 4. Fashion-MNIST -------------------------------------------------------------------------


def fashion(device: str, quick: bool) -> list[str]:
    from trainforge.models.image import CNNClassifier

    if not FASHION.is_file():
        return [f"({FASHION} is absent: no Fashion-MNIST row)"]
    data = np.load(FASHION)
    X, y, X_test, y_test = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    if quick:
        X, y, X_test, y_test = X[:2000], y[:2000], X_test[:1000], y_test[:1000]
    model = CNNClassifier(device=device, random_state=0, max_epochs=1 if quick else 10)
    started = time.perf_counter()
    model.fit(X, y)
    _sync(device)
    seconds = time.perf_counter() - started
    accuracy = float((model.predict(X_test) == y_test).mean())
    return [
        "| model | epochs | training seconds | test accuracy |",
        "|---|---|---|---|",
        f"| default CNNClassifier | {model.n_epochs_} | {seconds:.1f} | {accuracy:.4f} |",
    ]


# -- the report -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--parts", default="families,resume,speed,fashion")
    parser.add_argument("--write", action="store_true", help="replace the RESULTS.md section")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU here; this benchmark needs one (or --device cpu --quick)")
    card = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    started = time.perf_counter()
    lines = [
        HEADING,
        "",
        f"Command: `.venv/bin/python benchmarks/gpu.py --write`. Device: {card}; "
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), Python "
        f"{platform.python_version()}.",
    ]
    parts = {"families": families, "resume": resume}
    for part in args.parts.split(","):
        print(f"-- {part}", flush=True)
        if part in parts:
            table = parts[part](args.device)
        else:
            table = {"speed": speed, "fashion": fashion}[part](args.device, args.quick)
        lines += ["", f"**{part}**", "", *table]
        print("\n".join(table), flush=True)
    lines += ["", f"Whole script: {time.perf_counter() - started:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(f"whole script: {time.perf_counter() - started:.0f} s")
    if args.write:
        from common import replace_section

        replace_section(RESULTS, HEADING, text)


if __name__ == "__main__":
    main()
