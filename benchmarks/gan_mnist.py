"""Benchmark: the DCGAN on mnist_5k: sample grids per epoch and the quality score over training.

Trains ``GAN`` (defaults: latent 64, width 32, Adam 2e-4 / beta1 0.5, batches of 64) on the
5,000 digits, with the labels training the quality score's feature classifier. The score is a
Frechet distance between 1,000 real digits and 1,000 generated from fixed noise (lower is
better). Grids go to ``--grids`` (one PNG per epoch). With ``--write`` the per-epoch scores are
appended to benchmarks/RESULTS.md.

Usage:
    .venv/bin/python benchmarks/gan_mnist.py --epochs 10 --threads 1 --write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from common import machine_line, versions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "images" / "mnist_5k.csv.gz"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--grids", default="benchmarks/gan_grids", help="folder for the grids")
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from trainforge.models.gan import GAN

    frame = pd.read_csv(DATA, header=None)
    X = frame.iloc[:, :-1].to_numpy().reshape(-1, 28, 28)
    y = frame.iloc[:, -1].to_numpy()
    model = GAN(max_epochs=args.epochs, patience=args.epochs, random_state=0)
    started = time.perf_counter()
    model.fit(X, y, sample_dir=args.grids)
    seconds = time.perf_counter() - started
    print(json.dumps({"history": model.history_, "seconds": seconds}))
    if args.write:
        _write(args, model, seconds)


def _write(args, model, seconds: float) -> None:
    rows = "\n".join(
        f"| {h['epoch']} | {h['loss']:.3f} | {h['d_loss']:.3f} | {h['fid']:.2f} |"
        for h in model.history_
    )
    first, best = model.history_[0]["fid"], min(h["fid"] for h in model.history_)
    text = f"""
## GAN on mnist_5k (issue 7, images)

Command: `.venv/bin/python benchmarks/gan_mnist.py --epochs {args.epochs} --threads \
{args.threads} --write`

{machine_line()}
- {versions(["torch", "numpy", "scipy"])}; torch threads: {args.threads}; the 2 cores were
  shared with other work, so the time is an upper bound.

`GAN` defaults (DCGAN, latent 64, width 32, Adam 2e-4 with beta1 0.5, batches of 64) on the
5,000 digits. Quality score: Frechet distance between the features (a 3-epoch CNN classifier
trained on the same digits) of 1,000 real digits and of 1,000 samples from fixed noise; lower
is better. One grid of 64 samples per epoch was written to `{args.grids}/epoch-NNNN.png`.

| epoch | generator loss | discriminator loss | quality score (lower is better) |
|---:|---:|---:|---:|
{rows}

- Quality score: {first:.2f} after epoch 1, best {best:.2f} (epoch {model.best_epoch_}); the
  generator of the best epoch is the one kept.
- Training time: {seconds / 60:.1f} minutes, feature classifier included.
"""
    with open(RESULTS, "a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
