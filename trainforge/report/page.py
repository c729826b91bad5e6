"""Assembling the report page: sections of tables and embedded figures."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from trainforge.atomic import write_text
from trainforge.report import plots
from trainforge.report.board import leaderboard
from trainforge.report.columns import input_columns
from trainforge.report.samples import generated_samples
from trainforge.report.tables import duration, e, number, table

REPORT = "report.html"
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
table.board td{white-space:nowrap}table.board td.l{white-space:normal;overflow-wrap:anywhere}
table.board th{vertical-align:bottom}
details{margin:.5em 0}summary{cursor:pointer;color:#555}
img{max-width:100%;margin:.3em}.grid{display:flex;flex-wrap:wrap;align-items:flex-start}
.wide{overflow-x:auto}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
.warn{color:#8a5300}.muted{color:#777}
"""


def write_report(
    run: str | Path, output: str | Path | None = None, status: str | None = None
) -> Path:
    """Write the HTML report of the run folder ``run``; returns its path.

    Args:
        output: where to write it (default: ``report.html`` inside the run folder).
        status: the status to show; the runner writes the report as the run's last artifact,
            just before it marks the run ``completed``.
    """
    from trainforge.rundir import read_manifest

    run = Path(run)
    manifest = read_manifest(run)  # checked: names no candidate folder outside the run
    if status:
        manifest["status"] = status
    sections = [
        ("Leaderboard", lambda: leaderboard(run, manifest)),
        ("Input columns", lambda: input_columns(run, manifest)),
        ("Learning curves", lambda: _curves(run)),
        ("Generated samples", lambda: generated_samples(_candidates(run), manifest)),
        ("Diagnostics of the best model", lambda: _diagnostics(run, manifest)),
        ("Permutation feature importance", lambda: _importance(run, manifest)),
        ("Search history", lambda: _search(run, manifest)),
        ("Other figures", lambda: _figures(run)),
        ("ONNX export", lambda: _export(run)),
        ("Run manifest", lambda: _manifest(manifest)),
        ("Resolved spec", lambda: _spec(run)),
    ]
    body = [f"<h1>trainforge run {e(manifest.get('id', run.name))}</h1>", _summary(manifest)]
    for title, draw in sections:
        content = _drawn(draw)
        if content:
            body.append(f"<h2>{e(title)}</h2>\n{content}")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    body.append(f'<p class="muted">written {stamp} by trainforge</p>')
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>trainforge run {e(manifest.get('id', run.name))}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    target = Path(output) if output else run / REPORT
    write_text(target, page)
    return target


def _drawn(draw) -> str:
    """A section's HTML; a section that cannot be drawn says why instead of sinking the rest."""
    try:
        return draw()
    except Exception as exc:  # noqa: BLE001 - one odd file must not cost the whole report
        reason = f"{type(exc).__name__}: {exc}"
        return f'<p class="warn">this section could not be drawn: {e(reason)}</p>'


def _summary(manifest: dict) -> str:
    best = manifest.get("best") or {}
    metric = manifest.get("primary_metric")
    parts = [f"status <b>{e(manifest.get('status'))}</b>", f"task {e(manifest.get('task'))}"]
    if best:
        parts.append(f"best <b>{e(best.get('candidate'))}</b>")
        if metric in best:
            parts.append(f"{e(metric)} {number(best[metric])}")
    parts.append(f"seed {e(manifest.get('seed'))}")
    lines = [f"<p>{' · '.join(parts)}</p>"]
    for text in manifest.get("warnings", []) or []:
        lines.append(f'<p class="warn">warning: {e(text)}</p>')
    return "\n".join(lines)


def _candidates(run: Path) -> list[Path]:
    """Candidate folders in leaderboard order; all of them by name while there is none.

    A search's trials that are not on the leaderboard (all but each candidate's best) are
    left out: search.csv lists them, and drawing each would make a long run's report slow.
    """
    folder = run / "candidates"
    if not folder.is_dir():
        return []
    found = {p.name: p for p in folder.iterdir() if p.is_dir()}
    board = run / "leaderboard.csv"
    if not board.is_file():
        return [found[n] for n in sorted(found)]
    return [found[str(n)] for n in pd.read_csv(board)["candidate"] if str(n) in found]


def _curves(run: Path) -> str:
    parts = []
    for folder in _candidates(run):
        path = folder / "history.csv"
        if path.is_file():
            parts.append(plots.learning_curves(folder.name, pd.read_csv(path)))
    return _imgs(*parts) if any(parts) else ""


def _predictions(run: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for folder in _candidates(run):
        path = folder / "predictions.parquet"
        if path.is_file():
            frame = pd.read_parquet(path)
            if "y_true" in frame and "y_pred" in frame:
                frames[folder.name] = frame
    return frames


def _diagnostics(run: Path, manifest: dict) -> str:
    """Classification: confusion matrix, ROC, precision-recall, calibration; regression:
    predicted-vs-true and residuals. Curves compare every candidate with probabilities on
    binary tasks, and show the best model's classes one against the rest on multiclass."""
    frames = _predictions(run)
    best = (manifest.get("best") or {}).get("candidate")
    if best not in frames:
        return ""
    frame, task = frames[best], manifest.get("task")
    if task == "regression":
        return _imgs(plots.predicted_vs_true(frame, best), plots.residuals(frame, best))
    classes = [c.removeprefix("proba_") for c in frame.columns if c.startswith("proba_")]
    if not classes:
        classes = sorted(set(frame["y_true"]) | set(frame["y_pred"]))
    images = [plots.confusion_matrix(frame, classes, best)]
    if task == "binary" and len(classes) == 2:
        positive = classes[1]
        scope = f"(positive class {positive}, validation)"
        images += [
            plots.roc_curves(frames, positive, f"ROC {scope}"),
            plots.pr_curves(frames, positive, f"precision-recall {scope}"),
            plots.calibration(frames, positive, f"calibration {scope}"),
        ]
    elif len(classes) <= plots.MAX_CLASSES:
        for positive in classes:
            one = {f"{best}": frame}
            scope = f"{best}: class {positive} vs rest"
            images += [
                plots.roc_curves(one, positive, f"ROC, {scope}"),
                plots.pr_curves(one, positive, f"precision-recall, {scope}"),
            ]
        images.append(plots.calibration(_top_class(frame, classes), "hit", f"{best}: confidence"))
    return _imgs(*images)


def _top_class(frame: pd.DataFrame, classes: list[str]) -> dict[str, pd.DataFrame]:
    """Multiclass calibration: the top class's probability against whether it was right."""
    columns = [f"proba_{c}" for c in classes]
    hit = frame["y_pred"] == frame["y_true"]
    return {
        "top class": pd.DataFrame(
            {
                "y_true": hit.map({True: "hit", False: "miss"}),
                "proba_hit": frame[columns].max(axis=1),
            }
        )
    }


def _importance(run: Path, manifest: dict) -> str:
    best = (manifest.get("best") or {}).get("candidate")
    path = run / "candidates" / str(best) / "importance.csv"
    if not best or not path.is_file():
        return ""
    frame = pd.read_csv(path)
    return _img(plots.importance(frame, best)) + table(frame)


def _search(run: Path, manifest: dict) -> str:
    """A budgeted run's trials: score over time, parameter importance, counts by state."""
    from trainforge.metrics import METRICS

    path = run / "search.csv"
    if not path.is_file():
        return ""
    trials = pd.read_csv(path)
    if trials.empty:
        return ""
    metric = manifest.get("primary_metric")
    greater = METRICS[metric].greater_is_better if metric in METRICS else True
    importance = {}
    if (run / "search_importance.json").is_file():
        importance = json.loads((run / "search_importance.json").read_text(encoding="utf-8"))
    counts = trials.groupby(["study", "state"]).size().unstack(fill_value=0).reset_index()
    images = _imgs(
        plots.search_history(trials, metric or "score", greater),
        plots.search_importance(importance),
    )
    return images + table(counts) + '<p class="muted">every trial: search.csv</p>'


def _figures(run: Path) -> str:
    """PNG files other parts of trainforge left in candidates/<name>/figures/."""
    parts = []
    for folder in _candidates(run):
        for path in sorted((folder / "figures").glob("*.png")):
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f"<h3>{e(folder.name)}: {e(path.stem)}</h3>{_img(data)}")
    return "\n".join(parts)


def _manifest(manifest: dict) -> str:
    rows = []
    for key in (
        "id",
        "status",
        "created",
        "finished",
        "seconds",
        "seed",
        "task",
        "primary_metric",
        "error",
        "host",
    ):
        value = manifest.get(key)
        if value is not None:
            seconds = key == "seconds" and isinstance(value, (int, float))
            rows.append((key, duration(value) if seconds else str(value)))
    for role, item in (manifest.get("inputs") or {}).items():
        rows.append(
            (
                f"{role} data",
                f"{item.get('path') or '(in-memory)'}  {item.get('fingerprint')}",
            )
        )
    code = manifest.get("code")
    if code:
        rows.append(("code", f"{code.get('commit')}{' (dirty)' if code.get('dirty') else ''}"))
    for name, version in (manifest.get("versions") or {}).items():
        rows.append((f"version: {name}", str(version)))
    for text in manifest.get("notices", []) or []:
        rows.append(("notice", text))
    cells = "".join(f'<tr><th class="l">{e(k)}</th><td class="l">{e(v)}</td></tr>' for k, v in rows)
    return f"<table>{cells}</table>"


def _export(run: Path) -> str:
    """What ``export: onnx`` wrote (docs/export.md): the file, its inputs and its check."""
    import json

    path = run / "model.onnx.json"
    if not (run / "model.onnx").is_file() or not path.is_file():
        return ""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    check = manifest.get("verification") or {}
    inputs = ", ".join(f"{i['name']} ({i['type']})" for i in manifest.get("inputs") or [])
    return (
        f"<p><code>model.onnx</code>: {e(', '.join(manifest.get('families') or []))}, "
        f"{e(manifest.get('parts'))} part(s), sha256 <code>{e(manifest.get('sha256'))}</code>. "
        f"Checked against the Python model on {e(check.get('rows'))} rows: largest difference "
        f"{e(check.get('max_difference'))} (tolerance {e(check.get('tolerance'))}), labels "
        f"agree on {e(check.get('labels_agree'))} of them.</p><p>Inputs: {e(inputs)}.</p>"
    )


def _spec(run: Path) -> str:
    path = run / "spec.yaml"
    return f"<pre>{e(path.read_text(encoding='utf-8'))}</pre>" if path.is_file() else ""


def _img(data: str | None) -> str:
    return f'<img alt="figure" src="data:image/png;base64,{data}">' if data else ""


def _imgs(*images: str | None) -> str:
    return '<div class="grid">' + "\n".join(_img(i) for i in images if i) + "</div>"
