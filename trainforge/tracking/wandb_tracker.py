"""The Weights & Biases tracker: one W&B run per trainforge run.

Each candidate's metrics go under its name (``mlp/loss``, ``mlp/val_loss``) against its own
step (``mlp/epoch``): one history row per epoch (or boosting round) per candidate. Its final
validation metrics and status go to the run's summary (``mlp/final/log_loss``), its settings to
the config under its name; the run's end adds the best candidate and the report and
leaderboard as an artifact. A resumed trainforge run continues its W&B run (the id is kept in the
run folder's ``wandb.json``).

Offline unless WANDB_API_KEY is set or ``mode: online`` is asked for: files go to the run
folder's ``wandb/`` (``wandb sync runs/<id>/wandb/offline-run-*`` uploads them later). W&B's
cache, data and config folders go there too, not to the user's home, unless the user set them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from trainforge.errors import TrackingError
from trainforge.tracking.guard import guarded, numbers, read_json, stopped

RUN_FILE = "wandb.json"  # in the run folder: the W&B run id, for resume
FOLDER = "wandb"


def check_installed() -> None:
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise TrackingError('tracking.wandb needs W&B: pip install "trainforge[wandb]"') from None


class WandbTracker:
    """A run observer logging to W&B.

    Args:
        settings: the spec's ``tracking.wandb`` (project, entity, mode).
    """

    def __init__(self, settings):
        self.settings = settings
        self.mode = settings.mode or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.run = None
        self.live: set[str] = set()
        self.steps: set[str] = set()  # candidates whose step metric is defined
        self.enabled = True

    @guarded
    def run_started(self, run_id: str, path: str) -> None:
        import wandb

        folder = Path(path)
        for variable in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
            os.environ.setdefault(variable, str(folder / FOLDER / variable.lower()))
        os.environ.setdefault("WANDB_SILENT", "true")
        earlier = read_json(folder / RUN_FILE).get("id")
        manifest = read_json(folder / "manifest.json")
        self.run = wandb.init(
            project=self.settings.project,
            entity=self.settings.entity,
            mode=self.mode,
            dir=str(folder),
            name=manifest.get("name") or run_id,
            id=earlier or _run_key(run_id),
            resume="allow",
            config={"trainforge_run": run_id, "seed": manifest.get("seed")},
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        (folder / RUN_FILE).write_text(json.dumps({"id": self.run.id, "mode": self.mode}) + "\n")

    @guarded
    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        self.live.add(name)
        self._row(name, epoch, numbers(metrics))

    @guarded
    def candidate_finished(self, index: int, total: int, result) -> None:
        name = result.name
        if name not in self.live:  # rounds known only after fitting, or read back on resume
            for step, logs in enumerate(result.history or [], start=1):
                self._row(name, step, numbers(logs))
        final = numbers({**(result.metrics or {}), "fit_seconds": result.fit_seconds or 0.0})
        self.run.summary.update({f"{name}/final/{k}": v for k, v in final.items()})
        self.run.summary[f"{name}/status"] = result.status
        settings = {"family": result.family, **(result.settings or {})}
        self.run.config.update({name: _plain(settings)}, allow_val_change=True)

    @guarded
    def run_finished(self, status: str, path: str) -> None:
        import wandb

        if self.run is None:
            return
        run = Path(path)
        best = (read_json(run / "manifest.json").get("best") or {}).get("candidate")
        self.run.summary["best"] = best
        self.run.summary["status"] = status
        files = [run / n for n in ("report.html", "leaderboard.csv") if (run / n).is_file()]
        if files:
            artifact = wandb.Artifact(f"report-{self.run.id}", type="report")
            for file in files:
                artifact.add_file(str(file))
            self.run.log_artifact(artifact)
        self.run.finish(exit_code=0 if status == "completed" else 1)
        self.run = None

    def _stop(self, exc: Exception) -> None:
        stopped(self, "W&B", exc)
        if self.run is not None:
            try:
                self.run.finish(exit_code=1)
            except Exception:  # noqa: BLE001, S110 - W&B just failed; it may fail again
                pass

    def _row(self, name: str, step: int, values: dict[str, float]) -> None:
        """One history row: the candidate's metrics at its own step."""
        if name not in self.steps:
            self.run.define_metric(f"{name}/epoch")
            self.run.define_metric(f"{name}/*", step_metric=f"{name}/epoch")
            self.steps.add(name)
        self.run.log({f"{name}/epoch": step, **{f"{name}/{k}": v for k, v in values.items()}})


def _run_key(run_id: str) -> str:
    """A W&B run id from trainforge's (W&B allows letters, digits, ``-`` and ``_``)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id)[:64]


def _plain(value):
    return json.loads(json.dumps(value, default=str))
