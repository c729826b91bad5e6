"""The docs say what the code does: the catalogue is current, README's two commands are the
ones CI runs, and every CLI command is documented."""

from __future__ import annotations

import re
import runpy

from conftest import ROOT


def test_models_doc_catalogue_matches_the_registry():
    script = runpy.run_path(str(ROOT / "scripts" / "models_doc.py"))
    text = (ROOT / "docs" / "models.md").read_text()
    assert script["render"](text) == text, "run: python scripts/models_doc.py"


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    main_job, tests = commands
    assert "python3 -m venv" in main_job and "trainforge train examples/quickstart.yaml" in main_job
    assert "python3 -m venv" in tests and "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_is_in_the_readme():
    from trainforge.cli import _parser

    readme = (ROOT / "README.md").read_text()
    commands = _parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"trainforge {name}" in readme, name
