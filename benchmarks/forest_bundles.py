"""Benchmark: saving and loading bagged forests, compactly and through skops alone.

trainforge saves random forests and extra trees compactly (trainforge.models.forest): every
tree's arrays concatenated in one ``trees.npz``, the forest's settings through skops. Before,
the whole fitted forest went through skops, one JSON entry and two arrays per tree. This script
trains ``random_forest`` and ``extra_trees`` bagged over 8 folds (``--trials 0``) on a table,
then for every fold model writes and reads the same fitted pipeline both ways with trainforge's
own bundle code (``_write_pipeline`` / ``_read_pipeline``: hashes, skops' type audit, the tree
checks), and times ``trainforge predict`` of the run's ensemble in a fresh process.

Usage:
    .venv/bin/python benchmarks/forest_bundles.py --repeats 3 --write
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_line, replace_section, versions
from quality import DATASETS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular"
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Loading combined models: forests saved compactly"
TABLES = ("credit_g", "lending_club")
TRAINFORGE = ROOT / ".venv" / "bin" / "trainforge"


def _read(file: str, **options):
    import pandas as pd

    return pd.read_csv(DATA / file, sep="\t" if ".tsv" in file else ",", **options)


def _as_skops_only(pipeline):
    """The same fitted pipeline with its forest as the scikit-learn class it extends, which
    trainforge's bundle code writes through skops alone (the format before)."""
    from sklearn import ensemble
    from sklearn.pipeline import Pipeline

    final = pipeline[-1]
    parent = getattr(ensemble, type(final).__name__)
    plain = parent.__new__(parent)
    plain.__dict__.update(final.__dict__)
    return Pipeline([*pipeline.steps[:-1], (pipeline.steps[-1][0], plain)])


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(name: str, repeats: int) -> dict:
    from trainforge.bundle import INFO_FILE, _read_pipeline, _write_pipeline

    file, target, _ = DATASETS[name]
    out: dict = {"table": name}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        command = [str(TRAINFORGE), "train", str(DATA / file), "--target", target]
        command += ["--models", "random_forest,extra_trees", "--trials", "0", "--seed", "0"]
        command += ["--no-tracking", "--out", str(work / "runs")]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=work)
        out["train_seconds"] = time.perf_counter() - started
        run = next((work / "runs").glob("*/manifest.json")).parent
        for family in ("random_forest", "extra_trees"):
            folds = sorted((run / "candidates" / family / "model" / "folds").iterdir())
            pipelines = [_read_pipeline(f, json.loads((f / INFO_FILE).read_text())) for f in folds]
            ways = {"compact": pipelines, "skops only": [_as_skops_only(p) for p in pipelines]}
            for way, fitted in ways.items():
                writes, reads, sizes = [], [], []
                for repeat in range(repeats):
                    target_dir = work / "copy" / way / family / str(repeat)
                    infos = []
                    for index, pipeline in enumerate(fitted):
                        folder = target_dir / str(index)
                        folder.mkdir(parents=True)
                        writes.append(
                            _timed(lambda: infos.append(_write_pipeline(pipeline, folder)))
                        )
                    sizes.append(_size(target_dir))
                    for index, info in enumerate(infos):
                        reads.append(_timed(lambda: _read_pipeline(target_dir / str(index), info)))
                    shutil.rmtree(target_dir)
                k = len(fitted)
                out[f"{family} {way}"] = {
                    "folds": k,
                    "trees": sum(len(p[-1].estimators_) for p in fitted),
                    "write_seconds": min(sum(writes[i : i + k]) for i in range(0, len(writes), k)),
                    "read_seconds": min(sum(reads[i : i + k]) for i in range(0, len(reads), k)),
                    "mb": sizes[0] / 1e6,
                }
        test = work / "rows.csv"
        _read(file, nrows=250).to_csv(test, index=False)
        predicts = []
        for _ in range(repeats):
            command = [str(TRAINFORGE), "predict", str(run), str(test), "-o", str(work / "p.csv")]
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=work)
            predicts.append(time.perf_counter() - started)
        out["predict_seconds"] = min(predicts)
        out["best"] = json.loads((run / "manifest.json").read_text())["best"]["candidate"]
    return out


def report(results: list[dict], repeats: int) -> str:
    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python benchmarks/forest_bundles.py --repeats "
        f"{repeats} --write`. Each table: `trainforge train <table> --models "
        "random_forest,extra_trees --trials 0 --seed 0` (every candidate bagged over 8 folds, "
        "200 trees a fold), then every fold model's fitted pipeline written and read back with "
        "trainforge's bundle code, compactly (now) and through skops alone (before), the "
        f"fastest of {repeats} repeats, summed over the folds; and `trainforge predict` of the "
        "run's best model (the ensemble of both) on 250 rows in a fresh process, the fastest "
        "of the repeats.",
        "",
        machine_line(),
        f"- Versions: {versions(['scikit-learn', 'skops', 'numpy'])}",
        "",
        "| table | candidate | trees | format | write s | read s | MB |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for result in results:
        for family in ("random_forest", "extra_trees"):
            for way in ("skops only", "compact"):
                row = result[f"{family} {way}"]
                lines.append(
                    f"| {result['table']} | {family} | {row['trees']} | {way} | "
                    f"{row['write_seconds']:.2f} | {row['read_seconds']:.2f} | {row['mb']:.1f} |"
                )
    lines += [""]
    for result in results:
        lines.append(
            f"- {result['table']}: `trainforge predict` of the run's {result['best']} "
            f"(compact forests): {result['predict_seconds']:.1f} s for 250 rows."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--write", action="store_true", help="write the section to RESULTS.md")
    args = parser.parse_args()
    results = [measure(name, args.repeats) for name in args.tables.split(",")]
    text = report(results, args.repeats)
    print(text)
    if args.write:
        replace_section(RESULTS, SECTION, text)


if __name__ == "__main__":
    sys.exit(main())
