"""Clustering and reduction runs: what they find, what they save, repeatability, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import trainforge
from conftest import run_cli
from trainforge.errors import DataError, SpecError
from trainforge.unsupervised import runner

PNG = b"\x89PNG\r\n\x1a\n"


def blobs(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Four well separated groups in 4 numeric columns, a noise column, and their labels."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [6, 6, 0, 0], [0, 6, 6, 0], [6, 0, 0, 6]], dtype=float)
    group = np.arange(n) % 4
    points = centres[group] + rng.normal(scale=0.6, size=(n, 4))
    frame = pd.DataFrame(points, columns=["a", "b", "c", "d"])
    frame["noise"] = rng.normal(scale=0.3, size=n)
    frame["label"] = np.array(["north", "east", "south", "west"])[group]
    return frame


class Notices:
    """An observer that keeps the notices."""

    def __init__(self):
        self.notices: list[str] = []

    def run_started(self, run_id, path):
        pass

    def notice(self, message):
        self.notices.append(message)

    def candidate_started(self, index, total, name):
        pass

    def candidate_finished(self, index, total, result):
        pass


def test_clustering_finds_the_groups_and_saves_rows_figures_and_models(tmp_path):
    frame = blobs()
    models = ["kmeans", "gaussian_mixture", "agglomerative", "hdbscan", "dbscan"]
    result = trainforge.train(
        data=frame, task="clustering", labels="label", models=models, output=tmp_path
    )
    board = result.leaderboard.set_index("candidate")
    assert list(board.columns[2:7]) == [
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "ari",
        "nmi",
    ]
    assert (board["status"] == "ok").all()
    for name in ("kmeans", "gaussian_mixture", "agglomerative"):
        assert board.loc[name, "ari"] > 0.95, name
        assert board.loc[name, "clusters"] == 4
    assert board.loc["hdbscan", "nmi"] > 0.9 and board.loc["dbscan", "nmi"] > 0.9
    assert board["silhouette"].iloc[0] == board["silhouette"].max()

    run = result.path
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["task"] == "clustering"
    assert manifest["primary_metric"] == "silhouette"
    kmeans = run / "candidates" / "kmeans"
    saved = json.loads((kmeans / "metrics.json").read_text())
    assert saved["settings"]["n_clusters"] == 4  # chosen by silhouette over 2..15
    assert (kmeans / "figures" / "k_curve.png").read_bytes()[:8] == PNG
    assert (kmeans / "figures" / "clusters.png").read_bytes()[:8] == PNG
    assert (run / "candidates" / "dbscan" / "figures" / "k_distance.png").is_file()
    assignments = pd.read_parquet(kmeans / "assignments.parquet")
    assert list(assignments.columns) == ["row", "cluster"] and len(assignments) == len(frame)

    loaded = trainforge.load(kmeans / "model")
    np.testing.assert_array_equal(loaded.predict(frame), assignments["cluster"].to_numpy())
    assert list(loaded.predict_frame(frame.iloc[:3]).columns) == [*frame.columns, "cluster"]
    with pytest.raises(DataError, match="agglomerative cannot assign new rows to clusters"):
        trainforge.load(run / "candidates" / "agglomerative" / "model").predict(frame)


def test_default_ladders_start_simple():
    from trainforge.models.registry import ladder

    assert [f.name for f in ladder("clustering")] == [
        "kmeans",
        "gaussian_mixture",
        "agglomerative",
        "hdbscan",
    ]
    assert [f.name for f in ladder("reduction")] == ["pca", "umap", "tsne"]
    assert "kmeans" not in [f.name for f in ladder("binary")]


def test_reduction_embeds_transforms_new_rows_and_reloads_umap_exactly(tmp_path):
    frame = blobs(200)
    result = trainforge.train(
        data=frame,
        task="reduction",
        labels="label",
        models=["pca", "umap", "tsne"],
        output=tmp_path,
        seed=3,
    )
    board = result.leaderboard.set_index("candidate")
    assert list(board.columns[2:4]) == ["trustworthiness", "knn_preservation"]
    assert (board["trustworthiness"] > 0.85).all(), board["trustworthiness"]
    run = result.path / "candidates"
    pca = json.loads((run / "pca" / "metrics.json").read_text())
    curve_chosen = pca["settings"]["n_components"]
    assert 2 <= curve_chosen <= 5
    assert (run / "pca" / "figures" / "variance_curve.png").read_bytes()[:8] == PNG
    for name in ("pca", "umap", "tsne"):
        assert (run / name / "figures" / "embedding.png").read_bytes()[:8] == PNG
    embedding = pd.read_parquet(run / "umap" / "embedding.parquet")
    assert list(embedding.columns) == ["row", "component_1", "component_2"]

    new_rows = blobs(20, seed=9)
    umap_model = next(r.model for r in result.results if r.name == "umap")
    expected = umap_model.transform(new_rows)
    loaded = trainforge.load(run / "umap" / "model")  # JSON + safetensors, refits on demand
    pd.testing.assert_frame_equal(loaded.transform(new_rows), expected)
    pca_loaded = trainforge.load(run / "pca" / "model")
    assert pca_loaded.transform(new_rows).shape == (20, curve_chosen)
    with pytest.raises(DataError, match="tsne cannot transform new rows"):
        trainforge.load(run / "tsne" / "model").transform(new_rows)


def test_the_same_seed_gives_the_same_assignments_and_embeddings(tmp_path):
    frame = blobs(160)
    outputs = []
    for attempt in range(2):
        clusters = trainforge.train(
            data=frame,
            task="clustering",
            models=["kmeans", "gaussian_mixture", "hdbscan"],
            output=tmp_path / str(attempt),
            seed=5,
        )
        embedding = trainforge.train(
            data=frame,
            task="reduction",
            models=["pca", "tsne", "umap"],
            output=tmp_path / str(attempt),
            seed=5,
        )
        files = {
            name: pd.read_parquet(clusters.path / "candidates" / name / "assignments.parquet")
            for name in ("kmeans", "gaussian_mixture", "hdbscan")
        } | {
            name: pd.read_parquet(embedding.path / "candidates" / name / "embedding.parquet")
            for name in ("pca", "tsne", "umap")
        }
        outputs.append(files)
    for name, first in outputs[0].items():
        pd.testing.assert_frame_equal(outputs[1][name], first, check_exact=True, obj=name)
    assert outputs[0]["kmeans"]["cluster"].nunique() == 4


def test_tsne_on_large_data_embeds_a_seeded_sample_with_a_notice(tmp_path, monkeypatch):
    from dataclasses import replace

    from trainforge.models.registry import FAMILIES, get_family

    monkeypatch.setitem(FAMILIES, "tsne", replace(get_family("tsne"), fit_rows=100))
    observer = Notices()
    result = trainforge.train(
        data=blobs(160), task="reduction", models=["tsne"], output=tmp_path, observer=observer
    )
    embedding = pd.read_parquet(result.path / "candidates" / "tsne" / "embedding.parquet")
    assert embedding["component_1"].notna().sum() == 100
    assert any("seeded sample of 100 of the 160 rows" in n for n in observer.notices)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert any("seeded sample of 100 of the 160 rows" in n for n in manifest["notices"])
    assert np.isfinite(result.leaderboard["trustworthiness"].iloc[0])
    assert runner._sampling_notice("reduction", 160) == []
    assert runner._sampling_notice("reduction", 9000) == [
        "trustworthiness and k-NN preservation use a seeded sample of 3,000 of the 9,000 rows"
    ]


def test_bad_input_gives_one_line_errors(tmp_path):
    frame = blobs(40)
    cases = [
        (
            dict(data=frame, task="clustering", target="label"),
            SpecError,
            "data.target: a clustering task has no target; remove it, or name the column "
            "data.labels",
        ),
        (
            dict(data=pd.DataFrame({"a": [2.0] * 40, "b": 1, "c": "x"}), task="clustering"),
            DataError,
            "every column holds a single value ('a', 'b', 'c')",
        ),
        (dict(data=frame.iloc[:1], task="clustering"), DataError, "clustering needs at least 2"),
        (
            dict(data=frame, task="clustering", models=[{"name": "kmeans", "n_clusters": 50}]),
            DataError,
            "models.kmeans.n_clusters is 50 but the data has only 40 row(s); use at most 40",
        ),
        (
            dict(data=frame, task="clustering", models=["ridge"]),
            SpecError,
            "models[0].name: ridge does not support clustering tasks",
        ),
        (
            dict(data=frame, task="clustering", metric="ari"),
            SpecError,
            "metric: ari compares with true labels; name data.labels",
        ),
        (
            dict(data=frame, task="reduction", labels="colour"),
            DataError,
            "data.labels: column 'colour' is not in the data",
        ),
    ]
    for settings, error, message in cases:
        with pytest.raises(error) as caught:
            trainforge.train(output=tmp_path, **settings)
        assert message in str(caught.value)
        assert "\n" not in str(caught.value)


def test_single_value_columns_are_dropped_in_one_notice(tmp_path):
    frame = blobs(80).assign(**{f"blank{i}": 0.0 for i in range(30)})
    observer = Notices()
    trainforge.train(
        data=frame, task="clustering", models=["kmeans"], output=tmp_path, observer=observer
    )
    dropped = [n for n in observer.notices if "dropped" in n]
    assert len(dropped) == 1 and dropped[0].startswith("30 column(s) dropped")


def test_cli_clusters_a_file_and_assigns_new_rows(tmp_path):
    blobs(120).to_csv(tmp_path / "points.csv", index=False)
    done = run_cli(
        "train",
        "points.csv",
        "--task",
        "clustering",
        "--labels",
        "label",
        "--models",
        "kmeans",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    assert "silhouette" in done.stdout and "best: kmeans" in done.stdout
    assert "leaderboard (scored on the training rows)" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("1 "))
    assert " 4 " in row and " 4.0000 " not in row  # the cluster count prints as a count
    predicted = run_cli("predict", "latest", "points.csv", "-o", "clusters.csv", cwd=tmp_path)
    assert predicted.code == 0, predicted.stderr
    clusters = pd.read_csv(tmp_path / "clusters.csv")["cluster"]
    assert clusters.nunique() == 4 and len(clusters) == 120

    bad = run_cli("train", "points.csv", "--task", "clustering", "--target", "label", cwd=tmp_path)
    assert bad.code == 2
    assert bad.stderr.startswith("error: data.target: a clustering task has no target")
