"""The run report: the files a run keeps for it, the self-contained HTML page, and the page
rendered in headless Chromium with every image loaded."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import trainforge
from conftest import make_small_table
from trainforge.cli import main
from trainforge.report import write_report

MODELS = ["baseline", "logistic_regression", {"name": "mlp", "max_epochs": 3, "patience": 50}]


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary")
    return trainforge.train(
        data=make_small_table(), target="y", models=MODELS, output=folder, tracking=False
    )


def _images(page: str) -> list[bytes]:
    sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    return [base64.b64decode(s.split(",", 1)[1]) for s in sources]


def test_each_candidate_keeps_its_curve_and_validation_predictions(binary_run):
    folder = binary_run.path / "candidates"
    history = pd.read_csv(folder / "mlp" / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert {"loss", "val_loss", "val_accuracy"} <= set(history.columns)
    mlp = next(r for r in binary_run.results if r.name == "mlp")
    assert history["val_loss"].tolist() == pytest.approx([h["val_loss"] for h in mlp.history])
    assert not (folder / "baseline" / "history.csv").exists()  # fits in one go: no curve
    for name in ("baseline", "logistic_regression", "mlp"):
        predictions = pd.read_parquet(folder / name / "predictions.parquet")
        metrics = json.loads((folder / name / "metrics.json").read_text())["metrics"]
        assert list(predictions.columns) == ["row", "y_true", "y_pred", "proba_no", "proba_yes"]
        assert len(predictions) == 60  # the 20% holdout of 300 rows
        accuracy = float((predictions["y_true"] == predictions["y_pred"]).mean())
        assert accuracy == pytest.approx(metrics["accuracy"])
        top = np.where(predictions["proba_yes"] > predictions["proba_no"], "yes", "no")
        assert (top == predictions["y_pred"]).all()


def test_the_best_model_has_permutation_importance(binary_run):
    importance = pd.read_csv(
        binary_run.path / "candidates" / binary_run.best_name / "importance.csv"
    )
    assert set(importance["feature"]) == {"x1", "x2", "c", "flag"}
    assert importance["feature"].iloc[0] == "x1"  # the label is driven by x1, then c
    by_name = importance.set_index("feature")["importance_mean"]
    assert by_name["x1"] > 0.1 and by_name["c"] > by_name["x2"]
    assert abs(by_name["x2"]) < 0.05  # pure noise


def test_a_time_budget_cuts_the_importance_repeats_or_skips_it(binary_run, tmp_path):
    from trainforge.artifacts import write_importance
    from trainforge.data.dataset import load_dataset
    from trainforge.metrics import primary_metric
    from trainforge.spec import build_spec

    dataset = load_dataset(build_spec(target="y").data, "auto", 0, train=make_small_table())
    metric = primary_metric("roc_auc", dataset.task)
    model = binary_run.best
    for name in ("none", "all", "free"):
        (tmp_path / name).mkdir()
    skipped = write_importance(model, dataset, metric, tmp_path / "none", seconds=0.0)
    assert skipped.startswith("permutation importance skipped: one pass takes about ")
    assert not any((tmp_path / "none").iterdir())
    assert write_importance(model, dataset, metric, tmp_path / "all", seconds=600.0) is None
    unlimited = write_importance(model, dataset, metric, tmp_path / "free")
    assert unlimited is None
    timed = pd.read_csv(tmp_path / "all" / "importance.csv")
    pd.testing.assert_frame_equal(timed, pd.read_csv(tmp_path / "free" / "importance.csv"))


def test_the_report_is_one_self_contained_file(binary_run):
    page = (binary_run.path / "report.html").read_text()
    images = _images(page)
    # mlp curve; confusion matrix, ROC, precision-recall, calibration; importance
    assert len(images) == 6
    assert all(i.startswith(b"\x89PNG\r\n\x1a\n") and len(i) > 5000 for i in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from elsewhere
    for heading in ("Leaderboard", "Learning curves", "Diagnostics of the best model",
                    "Permutation feature importance", "Run manifest", "Resolved spec"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    manifest = json.loads((binary_run.path / "manifest.json").read_text())
    assert "status <b>completed</b>" in page
    assert manifest["inputs"]["train"]["fingerprint"] in page
    assert manifest["versions"]["scikit-learn"] in page


def test_the_report_command_rewrites_it_from_the_folder(binary_run, tmp_path, capsys):
    target = tmp_path / "again.html"
    assert main(["report", str(binary_run.path), "-o", str(target)]) == 0
    assert f"report: {target}" in capsys.readouterr().out
    assert len(_images(target.read_text())) == 6


def test_regression_report_shows_predicted_vs_true_and_residuals(tmp_path):
    table = make_small_table().drop(columns="y")
    table["y"] = 3 * table["x1"] + np.random.default_rng(1).normal(scale=0.3, size=len(table))
    result = trainforge.train(
        data=table, target="y", models=["baseline", "ridge"], output=tmp_path, tracking=False
    )
    page = (result.path / "report.html").read_text()
    assert len(_images(page)) == 3  # predicted-vs-true, residuals, importance
    predictions = pd.read_parquet(result.path / "candidates" / "ridge" / "predictions.parquet")
    rmse = float(np.sqrt(((predictions["y_true"] - predictions["y_pred"]) ** 2).mean()))
    saved = json.loads((result.path / "candidates" / "ridge" / "metrics.json").read_text())
    assert rmse == pytest.approx(saved["metrics"]["rmse"])


def test_multiclass_report_has_one_against_rest_curves(tmp_path):
    table = make_small_table()
    table["y"] = np.where(table["x1"] > 0.5, "high", np.where(table["x1"] < -0.5, "low", "mid"))
    result = trainforge.train(
        data=table, target="y", models=["logistic_regression"], output=tmp_path, tracking=False
    )
    # confusion matrix, ROC + precision-recall per class (3), confidence calibration, importance
    assert len(_images((result.path / "report.html").read_text())) == 1 + 6 + 1 + 1


def test_a_run_without_predictions_still_reports_and_embeds_its_figures(binary_run, tmp_path):
    """Clustering and reduction runs have no target: no predictions, only their own figures."""
    from matplotlib.figure import Figure

    run = tmp_path / "unsupervised"
    shutil.copytree(binary_run.path, run)
    for path in run.glob("candidates/*/predictions.parquet"):
        path.unlink()
    (run / "candidates" / binary_run.best_name / "importance.csv").unlink()
    figure = Figure(figsize=(3, 2))
    figure.subplots().scatter([0, 1, 2], [2, 0, 1])
    (run / "candidates" / "mlp" / "figures").mkdir()
    figure.savefig(run / "candidates" / "mlp" / "figures" / "embedding.png")
    page = write_report(run).read_text()
    images = _images(page)
    assert len(images) == 2  # the mlp curve and the figure
    assert (run / "candidates" / "mlp" / "figures" / "embedding.png").read_bytes() in images
    assert "mlp: embedding" in page and "Diagnostics" not in page


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed here when missing; a failed install fails the test."""
    found = shutil.which("chromium")
    if found:
        return found
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    found = shutil.which("chromium")
    if not found:
        pytest.fail("apt-get installed chromium but no chromium binary is on PATH")
    return found


CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]);
  document.body.setAttribute("data-images", JSON.stringify(images));
});
</script></body>"""


def test_the_report_renders_in_headless_chromium(binary_run, chromium, tmp_path):
    page = (binary_run.path / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK))
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    done = subprocess.run(
        [*flags, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'data-images="([^"]*)"', done.stdout)
    assert found, done.stdout[:2000]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == 6
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)

    shot = tmp_path / "report.png"
    done = subprocess.run(
        [*flags, "--window-size=1200,2400", f"--screenshot={shot}",
         (binary_run.path / "report.html").as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    print(f"report screenshot: {shot}")
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"))
    assert pixels.shape == (2400, 1200)
    assert (pixels < 128).mean() > 0.005  # text and plots, not a blank page


def test_a_section_that_cannot_be_drawn_says_why_and_the_rest_stays(binary_run, tmp_path):
    run = tmp_path / "damaged"
    shutil.copytree(binary_run.path, run)
    (run / "candidates" / binary_run.best_name / "predictions.parquet").write_bytes(b"not parquet")
    page = write_report(run).read_text()
    assert (
        '<h2>Diagnostics of the best model</h2>\n<p class="warn">this section could not be drawn: '
        in page
    )
    assert len(_images(page)) == 2  # the learning curve and the importance are still there
