"""Runs on disk: one folder per run with its resolved spec, manifest, leaderboard and models.

    runs/<id>/spec.yaml            the resolved RunSpec
    runs/<id>/manifest.json        status, seed, versions, input sha256s, git state, timings
    runs/<id>/leaderboard.csv      one row per candidate, best first
    runs/<id>/candidates/<name>/   model/ (a bundle) and metrics.json

The manifest says ``completed`` only after every other artifact is written. A run killed
outright still says ``running``; readers report it as ``interrupted`` once its process is gone.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from trainforge import __version__
from trainforge.atomic import write_json, write_text
from trainforge.errors import RunError

MANIFEST = "manifest.json"


# A candidate's name, which is also its folder's: nothing that could leave the run folder.
CANDIDATE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.#-]{0,127}$")


class RunDir:
    """A run's folder and its manifest, which is rewritten atomically on every change."""

    def __init__(self, path: Path, manifest: dict):
        self.path = path
        self.manifest = manifest

    @classmethod
    def create(cls, output: Path, name: str | None, seed: int) -> RunDir:
        output.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        while True:  # a random suffix and an exclusive mkdir: two runs never share a folder
            run_id = f"{stamp}-{name or 'run'}-{secrets.token_hex(3)}"
            try:
                (output / run_id).mkdir()
                break
            except FileExistsError:
                continue
        manifest = {
            "id": run_id,
            "status": "running",
            "created": _now(),
            "seed": seed,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "versions": versions(),
            "code": git_state(Path.cwd()),
        }
        run = cls(output / run_id, manifest)
        run.save()
        return run

    @classmethod
    def reopen(cls, path: Path) -> RunDir:
        """Take over an interrupted or failed run's folder to continue it."""
        manifest = read_manifest(path)
        attempts = manifest.get("resumed", [])
        manifest.update(
            status="running",
            pid=os.getpid(),
            host=socket.gethostname(),
            resumed=[*attempts, _now()],
            error=None,
        )
        run = cls(path, manifest)
        run.save()
        return run

    def update(self, **fields) -> None:
        self.manifest.update(fields)
        self.save()

    def save(self) -> None:
        write_json(self.path / MANIFEST, self.manifest)

    def write_text(self, name: str, text: str) -> Path:
        write_text(self.path / name, text)
        return self.path / name

    def candidate_dir(self, name: str) -> Path:
        folder = self.path / "candidates" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def finish(self, status: str, started: float, **fields) -> None:
        self.update(
            status=status, finished=_now(), seconds=round(time.time() - started, 3), **fields
        )


class ManifestNotices:
    """An observer that keeps every notice and warning a run gives, from its start to its
    report, in the manifest's ``notices`` and ``warnings`` (once each, also across resumed
    attempts)."""

    def __init__(self, run: RunDir):
        self.run = run

    def notice(self, message: str) -> None:
        self._keep("notices", message)

    def warning(self, message: str) -> None:
        self._keep("warnings", message)

    def _keep(self, field: str, message: str) -> None:
        kept = self.run.manifest.setdefault(field, [])
        if message not in kept:
            kept.append(message)
            self.run.save()


def read_manifest(path: Path) -> dict:
    """A run's manifest; one that is not a JSON object, or names a best candidate that is not a
    candidate's folder name (``../x``, ``/etc``), is refused."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} is not a readable trainforge run ({exc})") from None
    if not isinstance(manifest, dict):
        raise RunError(f"{path / MANIFEST} is not a trainforge manifest (not a JSON object)")
    best = manifest.get("best")
    if best is not None and not (
        isinstance(best, dict) and CANDIDATE_NAME.match(str(best.get("candidate", "")))
    ):
        raise RunError(f"{path / MANIFEST}: its best candidate is not a candidate's name")
    if manifest.get("status") == "running" and not _alive(manifest):
        manifest["status"] = "interrupted"
    return manifest


def list_runs(output: Path) -> list[tuple[Path, dict]]:
    """Runs under ``output``, newest first. Folders without a manifest are skipped."""
    if not output.is_dir():
        return []
    runs = []
    for folder in output.iterdir():
        if (folder / MANIFEST).is_file():
            try:
                runs.append((folder, read_manifest(folder)))
            except RunError:
                continue
    return sorted(runs, key=lambda item: item[1].get("created", ""), reverse=True)


def find_run(ref: str, output: Path) -> Path:
    """A run folder from a path, a run id, a unique id prefix, or ``latest``."""
    direct = Path(ref)
    if (direct / MANIFEST).is_file():
        return direct
    runs = list_runs(output)
    if ref == "latest" and runs:
        return runs[0][0]
    matches = [path for path, _ in runs if path.name == ref] or [
        path for path, _ in runs if path.name.startswith(ref)
    ]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RunError(f"run {ref!r} is ambiguous: {', '.join(p.name for p in matches[:5])}")
    raise RunError(f"no run {ref!r} under {output}; `trainforge runs` lists them")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "trainforge": __version__}
    for name in ["scikit-learn", "numpy", "pandas", "scipy", "pydantic", "skops", "pyarrow"]:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_state(folder: Path) -> dict | None:
    """Commit and dirty flag of the git checkout holding ``folder``, or None if it is not one."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status), "root": git("rev-parse", "--show-toplevel")}


def _alive(manifest: dict) -> bool:
    if manifest.get("host") != socket.gethostname():
        return True  # cannot tell from here
    try:
        os.kill(int(manifest.get("pid", -1)), 0)
    except (OSError, ValueError):
        return False
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
