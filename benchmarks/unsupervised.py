"""Clustering and reduction on image pixels: Fashion-MNIST's 10,000 test images and mnist_5k.

Each dataset goes through the default clustering ladder and the default reduction ladder of
trainforge (k chosen by silhouette / BIC, PCA to 90% variance, UMAP, t-SNE), with the true
digit / garment label named as ``labels`` (scored against, never a feature). Pixels are divided
by 255 first, so every column is numeric.

    python benchmarks/unsupervised.py [--out runs-bench] [--only mnist_5k] [--search-models kmeans]

Prints a Markdown section for benchmarks/RESULTS.md: ARI/NMI against the labels, silhouette,
trustworthiness and k-NN preservation, seconds per candidate and per run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_line, versions  # noqa: E402

import trainforge  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def fashion_mnist() -> pd.DataFrame:
    with np.load(DATA / "fashion_mnist.npz") as arrays:
        pixels = arrays["x_test"].reshape(len(arrays["x_test"]), -1) / 255.0
        labels = arrays["y_test"]
    frame = pd.DataFrame(pixels, columns=[f"p{i}" for i in range(pixels.shape[1])])
    return frame.assign(label=labels.astype(str))


def mnist_5k() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "mnist_5k.csv.gz", header=None)
    pixels = raw.iloc[:, :-1].to_numpy(dtype=float) / 255.0
    frame = pd.DataFrame(pixels, columns=[f"p{i}" for i in range(pixels.shape[1])])
    return frame.assign(label=raw.iloc[:, -1].astype(str).to_numpy())


DATASETS = {"mnist_5k": mnist_5k, "fashion_mnist_test": fashion_mnist}


# The default ladder chooses k itself; the second clustering run names k = 10 (the number of
# classes), to show what the search costs against knowing k.
RUNS = [
    ("clustering", None),
    (
        "clustering",
        [
            {"name": "kmeans", "n_clusters": 10},
            {"name": "gaussian_mixture", "n_components": 10},
            {"name": "agglomerative", "n_clusters": 10},
        ],
    ),
    ("reduction", None),
]


def run(name: str, frame: pd.DataFrame, task: str, models, out: Path):
    started = time.perf_counter()
    named_k = any(len(m) > 1 for m in models or [])
    tag = f"{name}-{task}" + ("-k10" if named_k else "")
    result = trainforge.train(
        data=frame, task=task, labels="label", models=models, output=out, name=tag, seed=0
    )
    return result.leaderboard, time.perf_counter() - started, result.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs-bench", type=Path)
    parser.add_argument("--only", choices=sorted(DATASETS))
    parser.add_argument(
        "--search-models",
        help="comma-separated families for the k-searching clustering run (default: the ladder)",
    )
    args = parser.parse_args()
    search = args.search_models.split(",") if args.search_models else None
    print("## Clustering and reduction on image pixels (issue 6)\n")
    print(f"{machine_line()}\n- {versions(['scikit-learn', 'umap-learn', 'numpy'])}\n")
    for name, load in DATASETS.items():
        if args.only and name != args.only:
            continue
        frame = load()
        for task, models in RUNS:
            if task == "clustering" and models is None and search:
                models = [{"name": family} for family in search]
                what = f"{task}, k searched ({', '.join(search)})"
            else:
                what = f"{task}, k = 10 named" if models else f"{task}, default ladder"
            board, seconds, path = run(name, frame, task, models, args.out)
            print(f"### {name} ({len(frame):,} rows x 784 pixels), {what}: {seconds:.0f} s\n")
            print(f"run folder: `{path}`\n")
            print(_table(board, task))
            print(flush=True)


def _table(board: pd.DataFrame, task: str) -> str:
    if task == "clustering":
        columns = ["candidate", "ari", "nmi", "silhouette", "clusters", "noise_fraction"]
    else:
        columns = ["candidate", "trustworthiness", "knn_preservation"]
    columns += ["fit_seconds", "status"]
    shown = board[[c for c in columns if c in board.columns]]
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for row in shown.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
