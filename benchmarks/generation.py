"""Benchmark: what the table GAN buys over the baselines, on adult, through the CLI.

For each seed, ``trainforge train --task generation`` runs the default generation ladder
(independent columns, Gaussian copula, GAN) on a seeded sample of adult (``--rows``, 80% to
learn from, 20% kept aside by the run itself) with ``income >50K`` as the utility target; the
leaderboards are read back. Lower two-sample AUC is better (0.5: a classifier cannot tell the
generated rows from the real ones kept aside); the aim (issue 21): the GAN below the better
baseline.

Usage:
    .venv/bin/python benchmarks/generation.py --rows 3000 --seeds 0,1,2 --write
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from common import machine_line, replace_section, versions

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT.parent / "shared" / "data" / "tabular" / "adult.csv"
SECTION = "## Generation: the table GAN against the baselines on adult"
COLUMNS = ["two_sample_auc", "column_distance_mean", "correlation_difference", "utility_ratio"]


def one(rows: int, seed: int, folder: Path) -> pd.DataFrame:
    data = folder / f"adult-{seed}.csv"
    pd.read_csv(ADULT).sample(rows, random_state=seed).to_csv(data, index=False)
    command = [
        sys.executable, "-m", "trainforge", "train", str(data), "--task", "generation",
        "--target", "income >50K", "--seed", str(seed), "--no-tracking", "--quiet",
        "--out", str(folder / "runs"),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    run = Path(done.stdout.strip().splitlines()[-1].removeprefix("run: "))
    board = pd.read_csv(run / "leaderboard.csv")
    board.insert(0, "seed", seed)
    board["run_seconds"] = round(seconds, 1)
    return board


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        boards = [one(args.rows, seed, Path(tmp)) for seed in seeds]
    frame = pd.concat(boards)
    table = frame[["seed", "candidate", *COLUMNS, "fit_seconds", "run_seconds"]]
    print(table.to_string(index=False))
    auc = frame.pivot(index="seed", columns="candidate", values="two_sample_auc")
    baseline = auc[["independent_columns", "gaussian_copula"]].min(axis=1)
    wins = int((auc["gan"] < baseline).sum())
    margin = (auc["gan"] - baseline).round(4).tolist()
    summary = (
        f"The GAN's two-sample AUC is below the better baseline's on {wins} of {len(seeds)} "
        f"seeds (GAN minus better baseline: {margin}; mean GAN {auc['gan'].mean():.3f}, "
        f"mean Gaussian copula {auc['gaussian_copula'].mean():.3f}, mean independent columns "
        f"{auc['independent_columns'].mean():.3f})."
    )
    print(summary)
    if not args.write:
        return
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            SECTION,
            "",
            f"Command: `.venv/bin/python benchmarks/generation.py --rows {args.rows} "
            f"--seeds {args.seeds} --write`",
            "",
            f"- Measured {stamp}. {machine_line().removeprefix('- ')}",
            f"- {versions(['scikit-learn', 'torch', 'pandas', 'numpy'])}",
            f"- Data: seeded samples of {args.rows:,} rows of adult (all 14 columns generated, "
            "the target among them); each run keeps 20% of its rows aside and scores every "
            "generator's samples against them. Lower is better for the AUC and distances; "
            "utility ratio: a model trained on generated rows predicting income on the real "
            "rows, over one trained on real rows (1 is as good).",
            "",
            _markdown(table),
            "",
            summary,
        ]
    )
    replace_section(ROOT / "benchmarks" / "RESULTS.md", SECTION, text)


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
