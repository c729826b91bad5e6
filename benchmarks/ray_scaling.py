"""Benchmark: a time-budgeted search locally and on Ray clusters of 1 and 2 worker nodes.

The same run (a real table from ../shared/data, the default candidates, one time limit, seed 0)
executes three ways: the local backend (no Ray), a Ray cluster of one node, and a Ray cluster of
two nodes (a head and one added node, one CPU each, both on this machine), with as many workers
as the cluster has CPUs. Reported: how long starting the cluster and connecting took, the run's
wall time, how many candidates and trials finished, those per minute, and the best validation
score. More nodes on a 2-core machine share the same two cores: the speed-up is small, and the
table says what Ray costs here.

A second table trains the MLP (its defaults) on one process and data-parallel on 2 Ray Train
workers, on two real tables: best validation loss, epochs and seconds.

Every Ray process runs inside a network namespace this script makes (``unshare -rn --pid
--fork --mount-proc``, only loopback there): the script re-runs itself inside one.

Usage:
    .venv/bin/python benchmarks/ray_scaling.py --time-limit 60 --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_line, replace_section, versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Ray: a budgeted search locally and on 1 and 2 Ray nodes"
INSIDE = "TRAINFORGE_BENCH_NETNS"
PACKAGES = ["ray", "torch", "scikit-learn", "lightgbm", "xgboost-cpu", "catboost"]


def one(backend: str, nodes: int, table: str, target: str, limit: float) -> dict:
    """One run; for Ray, a fresh cluster of ``nodes`` one-CPU nodes on loopback."""
    import trainforge

    cluster, start_seconds = None, 0.0
    execution = {"backend": "local"}
    if backend == "ray":
        from ray.cluster_utils import Cluster

        clock = time.perf_counter()
        head = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
        cluster = Cluster(initialize_head=True, head_node_args=head)
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        start_seconds = time.perf_counter() - clock
        execution = {"backend": "ray", "address": cluster.address}
    with tempfile.TemporaryDirectory() as out:
        clock = time.perf_counter()
        result = trainforge.train(
            data=str(DATA / table),
            target=target,
            time_limit=limit,
            seed=0,
            output=out,
            tracking=False,
            quiet=True,
            execution=execution,
        )
        wall = time.perf_counter() - clock
        manifest = json.loads((Path(result.path) / "manifest.json").read_text())
    if cluster is not None:
        cluster.shutdown()
    trained = [r for r in result.results if r.status == "ok"]
    primary = manifest["primary_metric"]
    return {
        "backend": backend,
        "nodes": nodes,
        "start_seconds": round(start_seconds, 1),
        "wall_seconds": round(wall, 1),
        "finished": len(trained),
        "trials": manifest["budget"]["trials_run"],
        "per_minute": round(len(trained) / wall * 60, 1),
        "best": manifest["best"]["candidate"],
        "score": round(manifest["best"][primary], 4),
        "metric": primary,
        "workers": manifest["execution"]["workers"],
    }


def data_parallel(table: str, target: str) -> dict:
    """The MLP's defaults on one process and on 2 Ray Train workers (standardized columns)."""
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import StandardScaler

    from trainforge.models.neural import MLPClassifier, MLPRegressor

    frame = pd.read_csv(DATA / table, sep=None, engine="python")
    X = frame.drop(columns=target).select_dtypes("number").to_numpy(float)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    y = frame[target].to_numpy()
    estimator = MLPRegressor if frame[target].nunique() > 20 else MLPClassifier
    row = {"table": table, "metric": "val_loss"}
    for workers in (1, 2):
        clock = time.perf_counter()
        fitted = estimator(random_state=0).fit(X, y, data_parallel=workers)
        row[f"seconds_{workers}"] = round(time.perf_counter() - clock, 1)
        row[f"loss_{workers}"] = round(min(h["val_loss"] for h in fitted.history_), 4)
        row[f"epochs_{workers}"] = fitted.n_epochs_
    return row


def inside(args) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from ray_cluster import loopback_up

    loopback_up()
    table, target = args.table.split(":")
    for backend, nodes in (("local", 0), ("ray", 1), ("ray", 2)):
        print(json.dumps(one(backend, nodes, table, target, args.time_limit)), flush=True)
    for table, target in (("credit_g.tsv.gz", "target"), ("california_housing.tsv.gz", "target")):
        print(json.dumps(data_parallel(table, target)), flush=True)


def report(rows: list[dict], parallel: list[dict], args, load: str) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/ray_scaling.py --time-limit {args.time_limit:g} "
        f"--table {args.table} --write`, inside a network namespace it makes (loopback only).",
        "",
        machine_line(),
        f"- Load average before the runs: {load}",
        f"- Versions: {versions(PACKAGES)}",
        "",
        "| backend | nodes | workers | Ray start (s) | run wall (s) | candidates + trials "
        "finished | trials | per minute | best | validation score |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['backend']} | {row['nodes'] or '-'} | {row['workers']} | "
            f"{row['start_seconds'] or '-'} | {row['wall_seconds']} | {row['finished']} | "
            f"{row['trials']} | {row['per_minute']} | {row['best']} | "
            f"{row['metric']} {row['score']} |"
        )
    lines += [
        "",
        "Data-parallel MLP (`fit(X, y, data_parallel=2)`, the MLP's defaults, seed 0, "
        "standardized numeric columns; 2 Ray Train workers on a private Ray, checkpoints "
        "reported every 5 s):",
        "",
        "| table | one process: val loss | epochs | s | 2 workers: val loss | epochs | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in parallel:
        lines.append(
            f"| {row['table'].split('.')[0]} | {row['loss_1']} | {row['epochs_1']} | "
            f"{row['seconds_1']} | {row['loss_2']} | {row['epochs_2']} | {row['seconds_2']} |"
        )
    lines += [
        "",
        "Ray start is the cluster's start-up (head, added node, waiting for both), before the "
        "run; the run's wall time includes connecting to it and shipping the package. Both "
        "nodes share this machine's cores, so two nodes give at most about two cores' worth "
        "of fits at once, as the local backend can already use for one threaded fit.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--table", default="credit_g.tsv.gz:target")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    if os.environ.get(INSIDE):
        inside(args)
        return
    load = open("/proc/loadavg").read().split()[:3]
    command = [
        "unshare",
        "-rn",
        "--pid",
        "--fork",
        "--mount-proc",
        sys.executable,
        str(Path(__file__).resolve()),
        *sys.argv[1:],
    ]
    done = subprocess.run(
        command, env={**os.environ, INSIDE: "1"}, capture_output=True, text=True, cwd=ROOT
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or len(rows) != 5:
        sys.exit(f"the runs failed:\n{done.stderr[-3000:]}")
    text = report(rows[:3], rows[3:], args, " ".join(load))
    print(text)
    if args.write:
        replace_section(RESULTS, SECTION, text)


if __name__ == "__main__":
    main()
