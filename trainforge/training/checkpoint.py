"""Checkpoint folders that are complete or ignored, and never need pickle to load.

    checkpoints/step-00000120/
        tensors.safetensors   weights, optimizer tensors, RNG states, callback tensors
        state.json            everything else: epoch, batch, history, scheduler, callbacks...
        manifest.json         sha256 of the two files above, written last

A checkpoint is written to a temporary folder beside its target, fsynced, moved into place with
``os.replace``, the parent folder fsynced, and only then is the manifest written (atomically).
A folder without a manifest, or whose files do not match it, is incomplete or corrupt: loading
reports it and falls back to the previous good checkpoint. So does one whose files match a
rewritten manifest but cannot be put back into the loop (``resume_latest`` restores inside the
fallback).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from trainforge.atomic import fsync_dir, fsync_tree, write_json
from trainforge.data.read import file_sha256
from trainforge.errors import CheckpointError, CheckpointMismatch

TENSORS, STATE, MANIFEST = "tensors.safetensors", "state.json", "manifest.json"
_NAME = re.compile(r"^step-(\d{8})$")


@dataclass
class Checkpoint:
    path: Path
    tensors: dict[str, torch.Tensor]
    state: dict


def save_checkpoint(folder: Path, step: int, tensors: dict, state: dict) -> Path:
    """Write checkpoint ``step-<step>`` under ``folder`` atomically; returns its path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step-{step:08d}"
    staging = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, staging / TENSORS)
        (staging / STATE).write_text(json.dumps(state, allow_nan=True))
        fsync_tree(staging)
        if target.exists():  # left by a run killed before its manifest: never a good one
            shutil.rmtree(target)
        os.replace(staging, target)
        fsync_dir(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_json(target / MANIFEST, {name: file_sha256(target / name) for name in (TENSORS, STATE)})
    return target


def checkpoints(folder: Path) -> list[Path]:
    """Checkpoint folders under ``folder``, oldest first (complete or not)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_latest(folder: Path, warn=print) -> Checkpoint | None:
    """The newest checkpoint that verifies, reporting each one skipped; None if there is none."""
    for path in reversed(checkpoints(folder)):
        try:
            return load_checkpoint(path)
        except CheckpointError as exc:
            warn(f"{exc}; using the previous checkpoint")
    return None


def resume_latest(folder: Path, build, restore, warn=print):
    """A loop to train with: ``build()``'s, restored by ``restore(loop, checkpoint)`` from the
    newest checkpoint that both loads and restores. One that fails either way is reported
    (``warn``) and the previous one is tried, each on a freshly built loop (a half-restored
    one is thrown away); with none left, the fresh loop starts from the beginning, unless one
    of them belonged to a different model or data (CheckpointMismatch, raised then)."""
    loop = build()
    mismatch = None
    for path in reversed(checkpoints(folder)):
        try:
            restore(loop, load_checkpoint(path))
            return loop
        except CheckpointMismatch as exc:  # tampered, or the folder is another model's
            mismatch = exc
            warn(f"{exc}; using the previous checkpoint")
            loop = build()
        except Exception as exc:  # noqa: BLE001 - any failure moves to the previous checkpoint
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            if not isinstance(exc, CheckpointError):
                reason = (
                    f"checkpoint {path.name} cannot be restored ({type(exc).__name__}: {reason})"
                )
            warn(f"{reason}; using the previous checkpoint")
            loop = build()
    if mismatch is not None:
        raise mismatch  # no checkpoint here is this model's: refuse rather than overwrite them
    return loop


def load_checkpoint(path: Path) -> Checkpoint:
    """Load one checkpoint after verifying every file against its manifest."""
    from safetensors.torch import load_file

    manifest = path / MANIFEST
    if not manifest.is_file():
        raise CheckpointError(f"checkpoint {path.name} is incomplete (no {MANIFEST})")
    try:
        expected = json.loads(manifest.read_text())
        for name in (TENSORS, STATE):
            if file_sha256(path / name) != expected[name]:
                raise CheckpointError(f"checkpoint {path.name} is corrupt ({name} changed)")
        return Checkpoint(path, load_file(path / TENSORS), json.loads((path / STATE).read_text()))
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - a manifest of [] or null, a file that is no
        # safetensors: every way a checkpoint can be unreadable is a reason to fall back
        kind = type(exc).__name__
        raise CheckpointError(f"checkpoint {path.name} cannot be read ({kind}: {exc})") from None


def prune(folder: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` checkpoints (and stray temporary folders)."""
    for path in checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
    for stray in folder.glob(".step-*.tmp"):
        shutil.rmtree(stray, ignore_errors=True)
