"""Images: reading (npz, class folders, pixel CSVs) with clear errors, augmentation, the CNN,
the image ladder and the run end to end (Python and CLI)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import torch

import trainforge
from conftest import DATA, manifests, run_cli
from trainforge.data.images import image_shape_of, images_frame, read_images
from trainforge.errors import DataError
from trainforge.models.image import CNNClassifier
from trainforge.models.registry import Profile, ladder
from trainforge.training.callbacks.augment import Augment

CLASSES = np.array(["cat", "dog", "emu"])


def make_images(n=180, size=8, channels=0, seed=0):
    """Noisy images of a horizontal bar (cat), a vertical bar (dog) or both (emu), placed at a
    random offset: shapes a CNN tells apart wherever they are."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    shape = (n, size, size) + ((channels,) if channels else ())
    X = rng.normal(60, 25, shape)
    for row, (label, at) in enumerate(zip(y, rng.integers(1, size - 3, n))):
        if label != 1:
            X[row, at : at + 2, 1 : size - 1] += 120
        if label != 0:
            X[row, 1 : size - 1, at : at + 2] += 120
    return X.clip(0, 255).astype(np.uint8), CLASSES[y]


def write_folder(root, X, y):
    from PIL import Image

    for index, (picture, label) in enumerate(zip(X, y)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(root / label / f"{index:04d}.png")
    return root


# -- reading ---------------------------------------------------------------------------------


def test_folder_npz_and_pixel_csv_give_the_same_pixel_table(tmp_path):
    X, y = make_images(30)
    from_folder = read_images(write_folder(tmp_path / "images", X, y), "label")
    np.savez(tmp_path / "images.npz", x_train=X, y_train=y)
    from_npz = read_images(tmp_path / "images.npz", "label")
    flat = np.column_stack([X.reshape(30, -1), np.arange(30)])
    with gzip.open(tmp_path / "pixels.csv.gz", "wt") as handle:  # no header, label last
        np.savetxt(handle, flat, fmt="%d", delimiter=",")
    from_csv = read_images(tmp_path / "pixels.csv.gz", "label")

    assert from_folder.shape == (30, 65) and image_shape_of(from_folder.columns[:-1]) == (8, 8, 1)
    order = np.argsort(y, kind="stable")  # the folder reads class by class
    np.testing.assert_array_equal(from_folder.iloc[:, :-1].to_numpy(), X[order].reshape(30, -1))
    assert list(from_folder["label"]) == list(y[order])
    pd.testing.assert_frame_equal(from_npz.drop(columns="label"), images_frame(X))
    assert list(from_csv.columns[:-1]) == list(from_npz.columns[:-1])
    assert from_csv["label"].tolist() == list(range(30))
    rgb = images_frame(np.zeros((2, 4, 6, 3)))
    assert rgb.columns[-1] == "pixel_3_5_2" and image_shape_of(rgb.columns) == (4, 6, 3)


def test_mixed_sizes_empty_class_folder_and_corrupt_image_are_clear_errors(tmp_path):
    from PIL import Image

    X, y = make_images(6)
    root = write_folder(tmp_path / "mixed", X, y)
    Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(root / "dog" / "big.png")
    with pytest.raises(DataError, match=r"mixed sizes: .*big.png is 12x10 .* resize them"):
        read_images(root, "label")

    root = write_folder(tmp_path / "empty", X, y)
    (root / "fox").mkdir()
    with pytest.raises(DataError, match=r"class folder 'fox' has no PNG or JPEG images"):
        read_images(root, "label")

    root = write_folder(tmp_path / "corrupt", X, y)
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"broken.png: not a readable image .*replace or delete"):
        read_images(root, "label")


def test_cli_reports_bad_images_in_one_line_with_exit_code_2(tmp_path):
    X, y = make_images(6)
    root = write_folder(tmp_path / "images", X, y)
    (root / "cat" / "broken.jpg").write_bytes(b"garbage")
    runs = tmp_path / "runs"
    done = run_cli("train", root, "--models", "cnn", "--out", runs, "--quiet", cwd=tmp_path)
    assert done.code == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ") and "broken.jpg: not a readable image" in done.stderr
    assert manifests(runs) == []  # the images are read before a run folder exists


# -- augmentation and the CNN ----------------------------------------------------------------


def test_augmentation_shifts_and_flips_from_its_own_saved_generator():
    images = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    crop = Augment(seed=3, padding=1, flip=False)
    out = crop(images)
    state = crop.state_dict()[1]["generator"]
    for picture, shifted in zip(images, out):  # each output is a shift of at most 1 pixel
        padded = torch.nn.functional.pad(picture, (1, 1, 1, 1))
        windows = [padded[:, r : r + 5, c : c + 5] for r in range(3) for c in range(3)]
        assert any(torch.equal(shifted, w) for w in windows)
    again = Augment(seed=0, padding=1, flip=False)
    again.load_state_dict({}, {"generator": state})
    assert torch.equal(crop(images), again(images))  # the saved state continues the draws
    flips = Augment(seed=0, padding=0, flip=True)(images.repeat(20, 1, 1, 1))
    flipped = [torch.equal(f, i.flip(2)) for f, i in zip(flips, images.repeat(20, 1, 1, 1))]
    assert 10 <= sum(flipped) <= 30  # about half of 40


def test_cnn_learns_saves_and_reloads_with_the_same_predictions(tmp_path):
    X, y = make_images(240)
    model = CNNClassifier(channels=(8, 16), batch_size=16, max_epochs=6, random_state=0)
    model.fit(X[:180], y[:180])
    assert model.image_shape_ == (8, 8, 1) and model.n_features_in_ == 64
    assert (model.predict(X[180:]) == y[180:]).mean() >= 0.9
    flat = model.predict_proba(X[180:].reshape(60, -1))  # flat pixel rows work too
    np.testing.assert_array_equal(flat, model.predict_proba(X[180:]))
    model.save_files(tmp_path)
    loaded = CNNClassifier.load_files(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X[180:]), flat)
    with pytest.raises(DataError, match=r"shape \(10, 10, 1\) given to a model trained on"):
        model.predict(np.zeros((2, 10, 10)))


def test_cnn_residual_blocks_and_rgb_images():
    X, y = make_images(120, channels=3)
    model = CNNClassifier(
        channels=(8, 8), residual=True, convs_per_block=2, max_epochs=2, random_state=0
    ).fit(X, y)
    assert model.image_shape_ == (8, 8, 3)
    assert model.model_.blocks[0].shortcut is not None
    assert model.predict(X[:5]).shape == (5,)


# -- the run: ladder, Python API, CLI --------------------------------------------------------


def test_image_ladder_is_logistic_regression_then_mlp_then_cnn():
    names = [f.name for f in ladder("multiclass", "image")]
    assert names == ["logistic_regression", "mlp", "cnn"]
    assert "cnn" not in [f.name for f in ladder("multiclass")]  # tables never get it
    profile = Profile("multiclass", 100, 64, 3, image_shape=(8, 8, 1))
    from trainforge.models.registry import get_family

    assert get_family("cnn").build(profile, {}).image_shape == [8, 8, 1]


def test_python_api_trains_on_image_arrays_and_the_best_model_predicts_images(tmp_path):
    X, y = make_images(200)
    result = trainforge.train(
        data=X,
        y=y,
        models=[
            "logistic_regression",
            {"name": "cnn", "channels": [8, 16], "batch_size": 16, "max_epochs": 15},
        ],
        output=tmp_path / "runs",
    )
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["task"] == "multiclass"
    assert set(result.leaderboard["candidate"]) == {"logistic_regression", "cnn", "ensemble"}
    scores = result.leaderboard.set_index("candidate")["accuracy"]
    assert scores["cnn"] >= 0.85 and scores["cnn"] > scores["logistic_regression"]
    cnn = trainforge.load(result.path / "candidates" / "cnn" / "model")
    test_X, test_y = make_images(40, seed=1)
    assert (cnn.predict(test_X) == test_y).mean() >= 0.85
    frame = cnn.predict_frame(test_X)
    assert list(frame.columns[-3:]) == ["proba_cat", "proba_dog", "proba_emu"]
    # no permutation importance of single pixels, and the run says so
    assert not list(result.path.glob("candidates/*/importance.csv"))
    assert "permutation importance is not computed for images" in manifest["notices"]


def test_cli_trains_a_class_folder_with_the_task_inferred(tmp_path):
    X, y = make_images(150)
    write_folder(tmp_path / "images", X, y)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "data:\n  train: images\nmodels:\n  - {name: cnn, channels: [8], max_epochs: 2}\n"
    )
    done = run_cli("train", spec, "--out", tmp_path / "runs", "--quiet", cwd=tmp_path)
    assert done.code == 0, done.stderr
    (manifest,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/manifest.json")]
    assert manifest["status"] == "completed" and manifest["best"]["candidate"] == "cnn"
    saved = (tmp_path / "runs").glob("*/spec.yaml")
    assert "task: image_classification" in next(saved).read_text()


def test_mnist_csv_of_pixel_columns_reads_as_28x28_images():
    frame = read_images(DATA / "images" / "mnist_5k.csv.gz", "digit")
    assert frame.shape == (5000, 785) and image_shape_of(frame.columns[:-1]) == (28, 28, 1)
    assert sorted(frame["digit"].unique()) == list(range(10))
