"""The command line's own behaviour: fast help, and files of every supported kind."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd

from trainforge.data.read import read_table


def test_help_imports_no_heavy_library():
    script = (
        "import sys\n"
        "from trainforge.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('sklearn', 'pandas', 'numpy', 'pydantic', 'skops', 'rich', 'torch',"
        " 'mlflow', 'matplotlib')"
        " if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "heavy:"


def test_csv_tsv_gzip_and_parquet_read_the_same_table(tmp_path, small_table):
    small_table.to_csv(tmp_path / "t.csv", index=False)
    small_table.to_csv(tmp_path / "t.tsv.gz", sep="\t", index=False)
    small_table.to_parquet(tmp_path / "t.parquet", index=False)
    reference = read_table(tmp_path / "t.csv")
    for name in ("t.tsv.gz", "t.parquet"):
        other = read_table(tmp_path / name)
        pd.testing.assert_frame_equal(other, reference, check_dtype=False)


def test_openmp_threads_spin_briefly_then_sleep_unless_the_user_chose():
    from trainforge.cli import SPIN_TURNS, openmp_waits

    env = {}
    openmp_waits(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": str(SPIN_TURNS)}
    assert SPIN_TURNS == 10_000
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "5"}):
        env = dict(chosen)
        openmp_waits(env)
        assert env == chosen  # nothing added beside the user's own choice


def test_the_command_sets_the_openmp_waits_before_it_runs():
    script = (
        "import os\n"
        "from trainforge.cli import main\n"
        "main([])\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "PASSIVE 10000"
