"""A two-node Ray cluster for tests/test_ray.py, inside a network namespace of its own.

Run as ``unshare -rn --pid --fork --mount-proc python tests/ray_cluster.py``: the namespace has
only a loopback interface (brought up here), so nothing Ray starts can talk to any other
address, and its PID namespace holds every Ray process, all of which end with this process.
It starts a head and one added node (one CPU each), prints ``{"ready": address}``, then runs
one scenario per line read from stdin (``{"scenario": NAME, ...}``), answering each with one
JSON line. The scenarios drive trainforge as a user would, with this cluster as the address.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
CLUSTER = None  # the running ray.cluster_utils.Cluster, for scenarios that add or remove nodes


def clone(estimator):
    from sklearn.base import clone as sklearn_clone

    return sklearn_clone(estimator)


def loopback_up() -> None:
    """Bring ``lo`` up (a new network namespace starts with it down)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    request = struct.pack("16sH14x", b"lo", 0)
    flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
    fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    sock.close()


def interfaces() -> list[str]:
    return sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:])


def listening() -> list[str]:
    """Local addresses of listening TCP sockets in this namespace (IPv4 and IPv6)."""
    found = []
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            rows = open(name).readlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A":  # LISTEN
                found.append(local[:width])
    return found


def train(address: str, out: str, local: bool = False, **settings):
    import trainforge

    execution = {"backend": "local"} if local else {"backend": "ray", "address": address}
    execution["workers"] = settings.pop("workers", 2)
    return trainforge.train(
        output=out, tracking=False, quiet=True, execution=execution, seed=0, **settings
    )


def manifest(path) -> dict:
    return json.loads((Path(path) / "manifest.json").read_text())


def board(result) -> list[dict]:
    return result.leaderboard.to_dict(orient="records")


def scenario_candidates(address: str, data: str, out: str) -> dict:
    """Four candidates on Ray and locally, the same seed."""
    models = ["logistic_regression", "decision_tree", "random_forest", "knn"]
    common = dict(data=data, target="target", models=models, ensemble=False)
    on_ray = train(address, out, name="ray4", **common)
    local = train(address, out, local=True, name="local4", **common)
    return {
        "ray": board(on_ray),
        "local": board(local),
        "execution": manifest(on_ray.path)["execution"],
        "local_execution": manifest(local.path)["execution"],
    }


def scenario_trials(address: str, data: str, out: str) -> dict:
    """A search with a trial limit on Ray and locally, with the same workers."""
    common = dict(data=data, target="target", models=["decision_tree"], trials=4, ensemble=False)
    on_ray = train(address, out, name="ray-trials", **common)
    local = train(address, out, local=True, name="local-trials", **common)
    read = [(Path(r.path) / "search.csv").read_text() for r in (on_ray, local)]
    return {"ray": read[0], "local": read[1], "budget": manifest(on_ray.path)["budget"]}


def scenario_kill(address: str, data: str, out: str) -> dict:
    """Kill the worker process of a running task once; the run must still complete."""
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set() and not killed:
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    command = open(f"/proc/{pid}/cmdline", "rb").read()
                except OSError:
                    continue
                if command.startswith(b"ray::_fit_task"):
                    time.sleep(0.5)  # well into the fit
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                        killed.append(int(pid))
                    except ProcessLookupError:
                        continue
                    break
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        result = train(
            address,
            out,
            name="killed",
            data=data,
            target="target",
            models=[{"name": "random_forest", "n_estimators": 400}],
            ensemble=False,
            workers=1,
        )
    finally:
        stop.set()
        thread.join()
    found = manifest(result.path)
    return {"killed": killed, "status": found["status"], "board": board(result)}


def scenario_node_leaves(address: str, data: str, out: str) -> dict:
    """Add a third node, and take it away (all its processes killed) while it runs a task."""
    node = CLUSTER.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    CLUSTER.wait_for_nodes()
    raylet = node.all_processes["raylet"][0].process.pid
    left: list[str] = []
    stop = threading.Event()

    def on_that_node(pid: str) -> bool:
        try:
            status = open(f"/proc/{pid}/status").read()
            command = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            return False
        parent = int(status.split("PPid:")[1].split()[0])
        return parent == raylet and command.startswith(b"ray::_fit_task")

    def remover():
        while not stop.is_set() and not left:
            if any(on_that_node(pid) for pid in os.listdir("/proc") if pid.isdigit()):
                time.sleep(0.5)  # well into the fit
                CLUSTER.remove_node(node, allow_graceful=False)
                left.append(node.node_id)
            time.sleep(0.05)

    thread = threading.Thread(target=remover, daemon=True)
    thread.start()
    models = [{"name": name, "n_estimators": 600} for name in ("random_forest", "extra_trees")]
    models.append({"name": "hist_gradient_boosting", "max_iter": 500, "early_stopping": False})
    try:
        result = train(address, out, name="node-left", data=data, target="target",
                       models=models, ensemble=False, workers=3)  # fmt: skip
    finally:
        stop.set()
        thread.join()
        if not left:
            CLUSTER.remove_node(node)
    found = manifest(result.path)
    return {"left": left, "status": found["status"], "board": board(result),
            "placement": found["execution"]["placement"]}  # fmt: skip


def scenario_resume(address: str, data: str, out: str) -> dict:
    """Kill the driver (the CLI) once its first candidate is written; resume it."""
    models = "logistic_regression,random_forest,extra_trees"
    command = [sys.executable, "-m", "trainforge", "train", data, "--target", "target"]
    command += ["--models", models, "--ray", address, "--workers", "1", "--no-tracking"]
    driver = subprocess.Popen(command, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    while driver.poll() is None and first is None:
        found = list(Path(out).glob("runs/*/candidates/logistic_regression/metrics.json"))
        first = found[0] if found else None
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    if first is None:
        return {"error": f"the run ended before it could be killed: {driver.stderr.read()}"}
    written = first.stat().st_mtime_ns
    run = first.parents[2]
    finished = sorted(p.parent.name for p in run.glob("candidates/*/metrics.json"))
    resumed = scenario_cli(address, data, out, ["resume", str(run), "--no-tracking"])
    resumed.update(
        status=manifest(run)["status"],
        read_back=first.stat().st_mtime_ns == written,
        finished_before_kill=finished,
        candidates=sorted(p.parent.name for p in run.glob("candidates/*/metrics.json")),
        placement=manifest(run)["execution"]["placement"],
    )
    return resumed


def scenario_cli(address: str, data: str, out: str, args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "trainforge", *args],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def scenario_data_parallel(address: str, data: str, out: str) -> dict:
    """An MLP on 2 Ray Train workers, its driver killed once a checkpoint is reported, then
    resumed; and the same MLP trained by one local process."""
    base = ["train", data, "--target", "target", "--models", "mlp", "--no-ensemble"]
    base += ["--no-tracking", "--seed", "0"]
    local = scenario_cli(address, data, out, [*base, "--name", "one-process"])
    command = [sys.executable, "-m", "trainforge", *base, "--name", "two-workers"]
    command += ["--ray", address, "--data-parallel", "2"]
    driver = subprocess.Popen(command, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pattern = "runs/*two-workers*/candidates/mlp/checkpoints/fold-0/data_parallel/checkpoint_*"
    reported: list = []
    while driver.poll() is None and not reported:
        reported = list(Path(out).glob(pattern))
        time.sleep(0.1)
    killed_at = time.time()
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    if not reported:
        return {"error": f"no checkpoint was reported before the run ended: {driver.stderr.read()}"}
    run = reported[0].parents[5]
    resumed = scenario_cli(address, data, out, ["resume", str(run), "--no-tracking"])
    storage = reported[0].parent
    return {
        "local": local,
        "resumed": resumed,
        "status": manifest(run)["status"],
        "placement": manifest(run)["execution"]["placement"],
        "before_kill": sum(p.stat().st_mtime < killed_at for p in storage.glob("checkpoint_*")),
        "after_kill": sum(p.stat().st_mtime > killed_at for p in storage.glob("checkpoint_*")),
        "boards": [
            (next(Path(out).glob(f"runs/*{name}*")) / "leaderboard.csv").read_text()
            for name in ("one-process", "two-workers")
        ],
    }


def scenario_nets_data_parallel(
    address: str, data: str, out: str, images: str, series: str, families: list[str]
) -> dict:
    """Each of ``families`` (cnn, rnn, transformer) fitted on 2 Ray Train workers and in one
    process: the test compares their held-out accuracy and epochs."""
    import numpy as np
    import ray

    from trainforge.models.image import CNNClassifier
    from trainforge.models.sequence import RNNClassifier, TransformerClassifier

    with np.load(images) as found:
        pictures = (found["x_train"][:2000], found["y_train"][:2000])
        pictures_test = (found["x_test"][:1000], found["y_test"][:1000])
    with np.load(series) as found:
        curves = (found["x_train"], found["y_train"])
        curves_test = (found["x_test"], found["y_test"])
    small_cnn = dict(channels=(8, 16), pooled_size=7, crop_padding=0, dropout=0.0, max_epochs=5)
    small_cnn["random_state"] = 0
    sequence_net = {"max_epochs": 40, "random_state": 0}
    nets = {
        "cnn": (CNNClassifier(**small_cnn), pictures, pictures_test),
        "rnn": (RNNClassifier(hidden_size=16, **sequence_net), curves, curves_test),
        "transformer": (TransformerClassifier(d_model=16, **sequence_net), curves, curves_test),
    }
    ray.init(address=address)
    try:
        answer = {}
        for name in families:
            net, (X, y), (X_test, y_test) = nets[name]
            one = clone(net).fit(X, y)
            two = clone(net).fit(X, y, data_parallel=2)
            answer[name] = {
                "one": float(np.mean(one.predict(X_test) == y_test)),
                "two": float(np.mean(two.predict(X_test) == y_test)),
                "epochs": [one.n_epochs_, two.n_epochs_],
            }
    finally:
        ray.shutdown()
    return answer


SCENARIOS = {
    "candidates": scenario_candidates,
    "trials": scenario_trials,
    "kill": scenario_kill,
    "cli": scenario_cli,
    "resume": scenario_resume,
    "node_leaves": scenario_node_leaves,
    "nets_data_parallel": scenario_nets_data_parallel,
    "data_parallel": scenario_data_parallel,
}


def main() -> None:
    answers = os.fdopen(os.dup(1), "w")  # the test reads only these lines on stdout
    os.dup2(2, 1)  # whatever else writes to stdout (Ray, native code) goes to the log
    sys.stdout = sys.stderr
    loopback_up()
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
    # a node that stops answering is declared dead after 2 missed checks 0.5 s apart (not 15 s)
    head["_system_config"] = {"health_check_period_ms": 500, "health_check_failure_threshold": 2}
    global CLUSTER
    cluster = CLUSTER = Cluster(initialize_head=True, head_node_args=head)
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    hello = {"ready": cluster.address, "interfaces": interfaces(), "listening": listening()}
    print(json.dumps(hello), file=answers, flush=True)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            name = request.pop("scenario")
            try:
                answer = SCENARIOS[name](cluster.address, **request)
                answer["listening"] = listening()
            except Exception:  # noqa: BLE001 - the test shows it
                answer = {"error": traceback.format_exc()}
            print(json.dumps(answer, default=str), file=answers, flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
