"""The command line's own behaviour: fast help, and files of every supported kind."""

from __future__ import annotations

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
