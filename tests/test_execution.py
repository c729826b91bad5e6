"""Where a run executes, without starting Ray: settings, refusals, and the local default.
(Runs on a Ray cluster are in tests/test_ray.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import make_small_table, manifests, run_cli
from trainforge.errors import SpecError
from trainforge.execution import public_address
from trainforge.spec import build_spec


def test_ray_settings_from_flags_keywords_and_the_spec():
    base = {"train": "t.csv", "target": "y"}
    assert build_spec(**base).execution.backend == "local"
    on = build_spec(**base, ray=True).execution
    assert (on.backend, on.address, on.workers) == ("ray", None, None)
    at = build_spec(**base, ray="10.0.0.5:6379", workers=4, data_parallel=2).execution
    assert (at.backend, at.address, at.workers, at.data_parallel) == ("ray", "10.0.0.5:6379", 4, 2)
    spec = build_spec({"data": base, "execution": {"backend": "ray", "cpus": 2, "gpus": 1}})
    assert (spec.execution.cpus, spec.execution.gpus) == (2.0, 1.0)


def test_data_parallel_without_ray_and_bad_values_are_refused():
    with pytest.raises(SpecError, match=r"execution.data_parallel: .* needs backend: ray"):
        build_spec(train="t.csv", target="y", data_parallel=2)
    with pytest.raises(SpecError, match="execution.workers"):
        build_spec(train="t.csv", target="y", ray=True, workers=0)
    with pytest.raises(SpecError, match="execution.backend"):
        build_spec({"data": {"train": "t.csv", "target": "y"}, "execution": {"backend": "dask"}})


def test_the_cli_refuses_data_parallel_without_ray_in_one_line(tmp_path):
    make_small_table().to_csv(tmp_path / "t.csv", index=False)
    done = run_cli("train", "t.csv", "--target", "y", "--data-parallel", "2", cwd=tmp_path)
    assert done.code == 2
    assert done.stderr.strip().splitlines() == [
        "error: execution.data_parallel: training one net on several workers needs backend: "
        "ray (--ray)"
    ]
    assert not (tmp_path / "runs").exists()


def test_a_local_run_records_its_backend_and_never_imports_ray(tmp_path):
    make_small_table().to_csv(tmp_path / "t.csv", index=False)
    script = (
        "import sys, trainforge\n"
        "trainforge.train(data='t.csv', target='y', models=['logistic_regression'], "
        "tracking=False, quiet=True)\n"
        "print('ray' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    (manifest,) = manifests(tmp_path / "runs")
    assert manifest["execution"] == {"backend": "local", "workers": 1}


def test_addresses_are_recorded_without_secrets():
    assert public_address("10.0.0.5:6379") == "10.0.0.5:6379"
    assert public_address("ray://alice:s3cret@head.example:10001") == "ray://head.example:10001"
    assert public_address("alice:s3cret@head:6379") == "head:6379"
    assert public_address("ray://head:10001/?token=abc") == "ray://head:10001/"
