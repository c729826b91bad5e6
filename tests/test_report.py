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
    none = write_importance(model, dataset, metric, tmp_path / "none", seconds=0.0)
    assert none == "permutation importance skipped: the time limit left no time for it"
    skipped = write_importance(model, dataset, metric, tmp_path / "none", seconds=1e-6)
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


# A bagged, imbalanced binary run's leaderboard as users see it: every standard metric, the
# imbalance metrics, the spread over folds and long candidate names (issue 14).
WIDE_BOARD = pd.DataFrame(
    {
        "rank": [1, 2, 3, 4, 5, 6],
        "candidate": ["stacking", "weighted_ensemble", "hist_gradient_boosting_2",
                      "logistic_regression", "mlp", "baseline"],
        "family": ["stacking", "weighted_ensemble", "hist_gradient_boosting",
                   "logistic_regression", "mlp", "baseline"],
        "roc_auc": [0.99612345, 0.9958, 0.99401, 0.9712, 0.9655, 0.5],
        "log_loss": [0.0339123, 0.0351, 0.0412, 0.0988, 0.1101, 0.6911],
        "accuracy": [0.9867, 0.9850, 0.9833, 0.9617, 0.9583, 0.5333],
        "balanced_accuracy": [0.9801, 0.9790, 0.9760, 0.9500, 0.9400, 0.5],
        "f1": [0.9712, 0.9700, 0.9655, 0.9188, 0.9100, 0.0],
        "pr_auc": [0.9890, 0.9881, 0.9850, 0.9400, 0.9300, 0.4733],
        "mcc": [0.9555, 0.9540, 0.9500, 0.9000, 0.8900, 0.0],
        "roc_auc_std": [0.0012, 0.0013, 0.0021, 0.0050, 0.0061, 0.0],
        "fit_seconds": [0.412, 0.01, 38.517, 1.204, 152.3, 0.012],
        "predict_ms_per_1k": [91.204, 80.5, 42.117, 3.318, 12.0, 73.895],
        "size_kb": [1843.2, 1701.9, 194.2, 3.9, 88.1, 154.0],
        "status": ["ok"] * 6,
    }
)  # fmt: skip
SELECTION = {
    "metric": "log_loss",
    "footing": "cross-fitted on two halves of the validation rows",
    "best_single": {"candidate": "hist_gradient_boosting_2", "cross_fitted": 0.0412},
    "stacking": 0.0339,
    "weighted_ensemble": 0.0351,
    "picked": "stacking",
}


def _with_wide_board(binary_run, folder) -> None:
    """A copy of the binary run whose leaderboard and pick are those of WIDE_BOARD."""
    shutil.copytree(binary_run.path, folder)
    WIDE_BOARD.to_csv(folder / "leaderboard.csv", index=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(
        primary_metric="log_loss", selection=SELECTION,
        best={"candidate": "stacking", "log_loss": 0.0339123},
    )  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _section(page: str, heading: str) -> str:
    return page.split(f"<h2>{heading}</h2>")[1].split("<h2>")[0]


def _rows(html_text: str) -> list[list[str]]:
    """The cell texts of each table row."""
    rows = re.findall(r"<tr>(.*?)</tr>", html_text, flags=re.S)
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S) for row in rows]


WIDTH_CHECK = """<script>
window.addEventListener("load", () => {
  const table = document.querySelector("table"), box = table.parentElement;
  document.body.setAttribute("data-width", JSON.stringify({
    window: window.innerWidth, page: document.documentElement.scrollWidth,
    right: table.getBoundingClientRect().right, box: [box.scrollWidth, box.clientWidth],
    heads: [...table.querySelectorAll("th")].map(h => h.textContent)}));
});
</script></body>"""


def test_the_leaderboard_fits_a_1400_pixel_window(binary_run, chromium, tmp_path):
    run = tmp_path / "wide"
    _with_wide_board(binary_run, run)
    probe = tmp_path / "probe.html"
    probe.write_text(write_report(run).read_text().replace("</body>", WIDTH_CHECK))
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,1000", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'data-width="([^"]*)"', done.stdout)
    assert found, done.stdout[:2000]
    width = json.loads(found.group(1).replace("&quot;", '"'))
    assert width["window"] == 1400
    assert width["page"] <= 1400 and width["right"] <= 1400
    scroll, visible = width["box"]
    assert scroll <= visible  # the leaderboard's own box does not scroll sideways either
    heads = " ".join(width["heads"])
    for shown in ("candidate", "log_loss", "fit", "predict", "size"):
        assert shown in heads


def test_the_leaderboard_formats_costs_and_keeps_every_column_one_click_away(binary_run, tmp_path):
    run = tmp_path / "wide"
    _with_wide_board(binary_run, run)
    section = _section(write_report(run).read_text(), "Leaderboard")
    compact, full = section.split("<details")
    rows = _rows(compact)
    assert [r[1] for r in rows[1:]] == WIDE_BOARD["candidate"].tolist()  # the picked one first
    first = dict(zip(rows[0], rows[1]))
    assert first["log_loss"].startswith("0.0339")
    table = pd.DataFrame(rows[1:], columns=rows[0])
    assert table["size"].tolist() == ["1.8 MB", "1.7 MB", "194 kB", "3.9 kB", "88 kB", "154 kB"]
    assert table.iloc[:, -3:-1].to_numpy().tolist()[2] == ["39 s", "42 ms"]  # fit, predict
    assert "194.2000" not in section and "1843.2" not in section
    header = _rows(full)[0]
    assert header == WIDE_BOARD.columns.tolist()  # the whole leaderboard.csv, folded away


def test_the_leaderboard_says_why_the_first_row_was_picked(binary_run, tmp_path):
    run = tmp_path / "wide"
    _with_wide_board(binary_run, run)
    text = re.sub(r"<[^>]+>", "", _section(write_report(run).read_text(), "Leaderboard"))
    assert (
        "Picked: stacking (cross-fitted log_loss 0.0339 against 0.0412 for the best single "
        "model, hist_gradient_boosting_2" in text
    )
    assert "hist_gradient_boosting_2; 0.0351 for weighted_ensemble)" in text
    assert "A combined model, when one is built, is handed back over a single one." in text
    # a run that picked a single model over the ensembles (before they were preferred) says so
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["selection"] = dict(SELECTION, picked="hist_gradient_boosting_2", stacking=0.0450)
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = re.sub(r"<[^>]+>", "", _section(write_report(run).read_text(), "Leaderboard"))
    assert "Picked: hist_gradient_boosting_2, the best single model (cross-fitted log_loss " \
        "0.0412 against 0.0450 for stacking; 0.0351 for weighted_ensemble)" in text  # fmt: skip
    assert "handed back over a single one" not in text


def test_numbers_are_formatted_for_people():
    from trainforge.report.tables import duration, milliseconds, number, size

    assert [size(k) for k in (0.4, 3.94, 194.2, 999.4, 1228.8, 30720.0)] == [
        "0.4 kB", "3.9 kB", "194 kB", "999 kB", "1.2 MB", "30 MB"]  # fmt: skip
    assert [duration(s) for s in (0.012, 1.234, 38.517, 152.3, 7384.0)] == [
        "0.01 s", "1.2 s", "39 s", "2m 32s", "2h 03m"]  # fmt: skip
    assert [milliseconds(m) for m in (0.0123, 3.318, 42.117, 1234.5)] == [
        "0.012 ms", "3.3 ms", "42 ms", "1,234 ms"]  # fmt: skip
    assert [number(v) for v in (0.99612345, 0.0000123, 12.5, 123456.7, float("nan"))] == [
        "0.9961", "1.23e-05", "12.5000", "123,457", "-"]  # fmt: skip


def _captured(monkeypatch) -> list:
    """The matplotlib figures the report's plots draw, kept as they are saved."""
    from trainforge.report import plots

    figures, save = [], plots._png
    monkeypatch.setattr(plots, "_png", lambda figure: figures.append(figure) or save(figure))
    return figures


def _titles(figure) -> list:
    """The figure's title and its axes' titles that hold text."""
    texts = [figure._suptitle] if figure._suptitle else []
    for ax in figure.axes:
        texts += [ax.title, ax._left_title, ax._right_title]
    return [t for t in texts if t.get_text()]


def _titles_outside(figure) -> list[str]:
    """Titles (of the axes and the figure) that reach past the figure's edges once drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer, box = canvas.get_renderer(), figure.bbox
    outside = []
    for text in _titles(figure):
        extent = text.get_window_extent(renderer)
        if extent.x0 < box.x0 - 0.5 or extent.x1 > box.x1 + 0.5 or extent.y1 > box.y1 + 0.5:
            outside.append(text.get_text())
    return outside


def test_figure_titles_are_not_clipped(monkeypatch):
    from trainforge.report import plots

    figures = _captured(monkeypatch)
    name = "hist_gradient_boosting_2"
    importance = pd.DataFrame(
        {"feature": ["education_num", "capital_gain", "age"], "importance_mean": [0.05, 0.03, 0.01],
         "importance_std": [0.01, 0.01, 0.005], "metric": ["log_loss"] * 3}
    )  # fmt: skip
    assert plots.importance(importance, name)
    rng = np.random.default_rng(0)
    truth = rng.choice(["high", "low", "mid"], size=200)
    frame = pd.DataFrame({"y_true": truth, "proba_high": rng.uniform(size=200)})
    assert plots.pr_curves({name: frame}, "high", f"precision-recall, {name}: class high vs rest")
    title = " ".join(t.get_text() for t in _titles(figures[0]))
    assert " ".join(title.split()) == f"{name}: permutation importance (validation)"
    assert [_titles_outside(f) for f in figures] == [[], []]


def test_boosting_loss_curves_use_a_log_scale(monkeypatch):
    from trainforge.report import plots

    figures = _captured(monkeypatch)
    rounds = np.arange(1, 301)
    boosting = pd.DataFrame(
        {"round": rounds, "loss": 0.69 * np.exp(-rounds / 20) + 0.01,
         "val_loss": 0.69 * np.exp(-rounds / 25) + 0.03}
    )  # fmt: skip
    assert plots.learning_curves("lightgbm", boosting)
    net = pd.DataFrame(
        {"epoch": [1, 2, 3], "loss": [0.7, 0.5, 0.4], "val_loss": [0.7, 0.55, 0.5],
         "val_accuracy": [0.6, 0.8, 0.85]}
    )  # fmt: skip
    assert plots.learning_curves("mlp", net)
    scales = [{ax.get_title().split(": ")[-1]: ax.get_yscale() for ax in f.axes} for f in figures]
    assert scales == [{"loss": "log"}, {"loss": "log", "accuracy": "linear"}]


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """Numeric, categorical, boolean and date columns, and an identifier the run drops."""
    table = make_small_table()
    table.insert(0, "customer_id", np.arange(1000, 1000 + len(table)))
    table["signup"] = pd.date_range("2024-01-01", periods=len(table)).strftime("%Y-%m-%d")
    folder = tmp_path_factory.mktemp("mixed")
    return table, trainforge.train(
        data=table, target="y", models=["baseline"], output=folder, tracking=False
    )


def test_the_report_lists_the_inferred_column_roles(mixed_run):
    table, result = mixed_run
    section = _section((result.path / "report.html").read_text(), "Input columns")
    used, dropped = [_rows(part) for part in section.split("</table>")[:2]]
    assert used == [
        ["column", "role", "distinct values", "expands into"],
        ["x1", "numeric", "300", ""],
        ["x2", "numeric", "300", ""],
        ["c", "categorical", "3", ""],
        ["flag", "boolean", "2", ""],
        ["signup", "datetime", "300", "year, month, day, day_of_week"],
    ]
    assert dropped == [
        ["dropped column", "why"],
        ["customer_id", "it looks like a row identifier (all values unique)"],
    ]
    text = re.sub(r"<[^>]+>", "", section)
    assert "target y (binary: no, yes)" in text
    assert "5 input columns: 2 numeric, 1 categorical, 1 boolean, 1 datetime; 1 dropped" in text


def test_a_figure_is_laid_out_once_for_its_file_and_keeps_that_layout(monkeypatch):
    import matplotlib.layout_engine as constrained

    from trainforge.report import plots

    calls = []
    original = constrained.do_constrained_layout
    monkeypatch.setattr(
        constrained, "do_constrained_layout", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    figure = plots._figure()
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("a title")
    figure.draw_without_rendering()
    laid_out = ax.get_position().bounds
    calls.clear()
    png = plots._png(figure)
    assert len(calls) == 1  # fit_titles's layout; the file is drawn without another
    assert figure.get_layout_engine() is None and ax.get_position().bounds == laid_out
    assert base64.b64decode(png).startswith(b"\x89PNG")
