"""Runs on Ray: a two-node cluster the tests start inside a network namespace of their own
(tests/ray_cluster.py), shared by every test here. Only loopback exists in that namespace, so no
Ray traffic can reach any other address; its PID namespace ends every Ray process with it."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, ROOT

pytest.importorskip("ray", reason="the ray extra is not installed")
CREDIT = DATA / "tabular" / "credit_g.tsv.gz"


class Cluster:
    def __init__(self, folder: Path):
        self.folder = folder
        self.process = subprocess.Popen(
            ["unshare", "-rn", "--pid", "--fork", "--mount-proc", sys.executable,
             str(ROOT / "tests" / "ray_cluster.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(folder / "cluster.log", "w"),
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        self.hello = self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            log = (self.folder / "cluster.log").read_text()[-3000:]
            pytest.fail(f"the Ray cluster helper ended: {log}")
        return json.loads(line)

    def ask(self, scenario: str, **settings) -> dict:
        out = self.folder / scenario
        out.mkdir(exist_ok=True)
        request = {"scenario": scenario, "data": str(CREDIT), "out": str(out), **settings}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        assert "error" not in answer, answer["error"]
        assert all(_loopback(a) for a in answer["listening"]), answer["listening"]
        return answer

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its PID namespace ends every Ray process with it


def _loopback(hex_address: str) -> bool:
    """A /proc/net/tcp local address is 127.0.0.1 (or IPv6 loopback, or 127.0.0.1 mapped)."""
    return hex_address in (
        "0100007F",
        "00000000000000000000000001000000",
        "0000000000000000FFFF00000100007F",
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if shutil.which("unshare") is None:
        pytest.skip("unshare is missing: Ray may only run in a network namespace here")
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no network namespaces for this user: {probe.stderr.decode().strip()}")
    running = Cluster(tmp_path_factory.mktemp("ray"))
    yield running
    running.stop()


def test_the_cluster_has_only_loopback_and_listens_only_there(cluster):
    assert cluster.hello["interfaces"] == ["lo"]
    assert cluster.hello["ready"].startswith("127.0.0.1:")
    assert cluster.hello["listening"] and all(_loopback(a) for a in cluster.hello["listening"])


def test_candidates_run_on_both_nodes_and_score_as_locally(cluster):
    answer = cluster.ask("candidates")
    execution = answer["execution"]
    assert execution["backend"] == "ray" and execution["nodes"] == 2
    assert execution["address"] == cluster.hello["ready"]
    placement = execution["placement"]
    assert sorted(placement) == ["decision_tree", "knn", "logistic_regression", "random_forest"]
    assert len(set(placement.values())) == 2  # tasks ran on both nodes
    assert answer["local_execution"] == {"backend": "local", "workers": 2}
    ray_board = {row["candidate"]: row for row in answer["ray"]}
    local_board = {row["candidate"]: row for row in answer["local"]}
    assert set(ray_board) == set(local_board)
    for name, row in local_board.items():
        for column in ("roc_auc", "log_loss", "accuracy"):
            assert math.isclose(ray_board[name][column], row[column], rel_tol=1e-12), (name, column)


def test_a_trial_limited_search_draws_the_same_trials_as_locally(cluster):
    answer = cluster.ask("trials")

    def rows(text: str) -> list[dict]:  # in trial order (the file is in order of starting)
        found = list(csv.DictReader(io.StringIO(text)))
        return sorted(found, key=lambda row: (row["study"], int(row["number"])))

    ray_rows, local_rows = rows(answer["ray"]), rows(answer["local"])
    assert len(ray_rows) == len(local_rows) >= 4
    timing = {"started_seconds", "finished_seconds", "datetime_start", "datetime_complete"}
    for ray_row, local_row in zip(ray_rows, local_rows):
        kept = {k: v for k, v in ray_row.items() if k not in timing}
        assert kept == {k: v for k, v in local_row.items() if k not in timing}
        assert kept["state"] == "COMPLETE" and float(kept["value"]) > 0.6
    assert answer["budget"]["trials_run"] == 4


def test_a_killed_worker_costs_a_retry_not_the_run(cluster):
    answer = cluster.ask("kill")
    assert answer["killed"], "no task's worker process was found to kill"
    assert answer["status"] == "completed"
    assert [row["candidate"] for row in answer["board"]] == ["random_forest"]
    assert answer["board"][0]["status"] == "ok"


def test_a_killed_driver_resumes_on_the_cluster(cluster):
    answer = cluster.ask("resume")
    assert answer["code"] == 0, answer["stderr"]
    assert answer["status"] == "completed"
    assert answer["read_back"]  # the candidate finished before the kill was not trained again
    assert answer["candidates"] == [
        "ensemble",
        "extra_trees",
        "logistic_regression",
        "random_forest",
    ]
    # what had not finished before the kill ran on the cluster, and only that (a forest can
    # finish in the moment between the first candidate's files and the kill)
    left = set(answer["candidates"]) - set(answer["finished_before_kill"]) - {"ensemble"}
    assert "extra_trees" in left and set(answer["placement"]) == left


def test_an_mlp_on_two_ray_train_workers_resumes_and_matches_one_process(cluster):
    answer = cluster.ask("data_parallel")
    assert answer["local"]["code"] == 0, answer["local"]["stderr"]
    assert answer["resumed"]["code"] == 0, answer["resumed"]["stderr"]
    assert answer["status"] == "completed"
    assert answer["placement"] == {"mlp": "ray train: 2 workers"}
    # checkpoints reported before the kill stayed, and the resumed fit reported more
    assert answer["before_kill"] >= 1 and answer["after_kill"] >= 1
    one, two = (next(csv.DictReader(io.StringIO(text))) for text in answer["boards"])
    assert one["candidate"] == two["candidate"] == "mlp"
    loss_one, loss_two = float(one["log_loss"]), float(two["log_loss"])
    assert abs(loss_two - loss_one) <= 0.01 * loss_one, (loss_one, loss_two)


def test_a_wrong_address_is_one_line_and_exit_2(cluster):
    args = ["train", str(CREDIT), "--target", "target", "--models", "logistic_regression"]
    answer = cluster.ask("cli", args=[*args, "--ray", "127.0.0.1:9", "--no-tracking"])
    assert answer["code"] == 2
    lines = answer["stderr"].strip().splitlines()
    assert len(lines) == 1 and "cannot reach a Ray cluster at 127.0.0.1:9" in lines[0]
    assert not list((cluster.folder / "cli").glob("runs/*"))  # no run folder was left


def test_a_node_that_leaves_costs_its_task_a_retry_not_the_run(cluster):
    answer = cluster.ask("node_leaves")
    assert answer["left"], "no task was seen running on the added node"
    assert answer["status"] == "completed"
    board = {row["candidate"]: row["status"] for row in answer["board"]}
    assert board == dict.fromkeys(["extra_trees", "hist_gradient_boosting", "random_forest"], "ok")
    assert answer["left"][0] not in answer["placement"].values()  # retried on a node still there


def _nets_on_two_workers(cluster, families: list[str]) -> None:
    answer = cluster.ask(
        "nets_data_parallel",
        images=str(DATA / "images" / "fashion_mnist.npz"),
        series=str(DATA / "sequences" / "basicmotions.npz"),
        families=families,
    )
    for name in families:
        found = answer[name]
        assert found["epochs"][1] == found["epochs"][0], name  # the same stopping rule held
        assert found["two"] >= found["one"] - 0.05, name


@pytest.mark.long  # 50 s in all: each data-parallel fit starts Ray Train (about 12 s)
def test_a_cnn_an_rnn_and_a_transformer_train_on_two_ray_train_workers(cluster):
    _nets_on_two_workers(cluster, ["cnn", "rnn", "transformer"])
