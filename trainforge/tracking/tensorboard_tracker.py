"""The TensorBoard tracker: event files any TensorBoard reads (``tensorboard --logdir DIR``).

One folder per candidate, under the run folder's ``tensorboard/`` (or ``tracking.tensorboard.dir``
/ <run id>): its per-epoch (or per-round) metrics as scalars at their step, its final validation
metrics under ``final/``, its settings as text. The run's own folder (``run``) gets the best
candidate, the status and where the report is. Written with TensorBoard's own event writer
(``tensorboard`` package; no TensorFlow).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from trainforge.errors import TrackingError
from trainforge.tracking.guard import guarded, numbers, read_json, stopped

FOLDER = "tensorboard"  # in the run folder, unless tracking.tensorboard.dir is set
RUN = "run"  # the folder for run-level records, beside the candidates'


def check_installed() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise TrackingError(
            'tracking.tensorboard needs TensorBoard: pip install "trainforge[tensorboard]"'
        ) from None


class TensorBoardTracker:
    """A run observer writing TensorBoard event files.

    Args:
        folder: where runs go (each in a folder named after its run id), or None for the run
            folder's ``tensorboard/``.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self.root: Path | None = None
        self.writers: dict[str, object] = {}
        self.live: set[str] = set()  # candidates whose epochs were written as they happened
        self.enabled = True

    @guarded
    def run_started(self, run_id: str, path: str) -> None:
        base = Path(self.folder) / run_id if self.folder else Path(path) / FOLDER
        base.mkdir(parents=True, exist_ok=True)
        self.root = base

    @guarded
    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        self.live.add(name)
        self._scalars(name, numbers(metrics), epoch)

    @guarded
    def candidate_finished(self, index: int, total: int, result) -> None:
        name = result.name
        if name not in self.live:  # rounds known only after fitting, or read back on resume
            for step, logs in enumerate(result.history or [], start=1):
                self._scalars(name, numbers(logs), step)
        final = {f"final/{k}": v for k, v in numbers(result.metrics or {}).items()}
        self._scalars(name, {**final, "final/fit_seconds": result.fit_seconds or 0.0}, 0)
        settings = {"family": result.family, "status": result.status, **(result.settings or {})}
        self._text(name, "settings", json.dumps(settings, indent=1, default=str))
        self._writer(name).flush()

    @guarded
    def run_finished(self, status: str, path: str) -> None:
        run = Path(path)
        manifest = read_json(run / "manifest.json")
        best = (manifest.get("best") or {}).get("candidate")
        lines = [f"status: {status}", f"best: {best}", f"report: {run / 'report.html'}"]
        self._text(RUN, "run", "\n\n".join(lines))
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def _stop(self, exc: Exception) -> None:
        stopped(self, "TensorBoard", exc)

    def _writer(self, name: str):
        if name not in self.writers:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            folder = self.root / _safe(name)
            folder.mkdir(parents=True, exist_ok=True)
            self.writers[name] = EventFileWriter(str(folder), flush_secs=5)
        return self.writers[name]

    def _scalars(self, name: str, values: dict[str, float], step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        if values:
            summary = Summary(
                value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()]
            )
            self._add(name, summary, step)

    def _text(self, name: str, tag: str, text: str) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

        plugin = SummaryMetadata.PluginData(plugin_name="text")
        tensor = TensorProto(
            dtype=7,  # DT_STRING
            string_val=[text.encode()],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        value = Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin), tensor=tensor)
        self._add(name, Summary(value=[value]), 0)

    def _add(self, name: str, summary, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._writer(name).add_event(Event(wall_time=time.time(), step=step, summary=summary))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "candidate"
