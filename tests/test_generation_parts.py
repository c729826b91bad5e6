"""Generation's standalone parts: the table codec, the baseline generators, the quality scores."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import DATA
from trainforge.generation.baseline import GaussianCopula, IndependentColumns
from trainforge.generation.scores import (
    column_distances,
    correlation_difference,
    image_scores,
    table_scores,
    two_sample_auc,
    utility,
)
from trainforge.generation.table_codec import TableCodec

GENERATORS = [IndependentColumns, GaussianCopula]


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    """2,000 rows of Adult (string categoricals with missing values, integer columns), with
    missing ages added so that a numeric column has missing values too."""
    frame = pd.read_csv(DATA / "tabular" / "adult.csv").sample(2000, random_state=0)
    frame = frame.reset_index(drop=True)
    frame["age"] = frame["age"].astype("float64").mask(frame.index % 10 == 3)
    return frame


def correlated(n: int, seed: int) -> pd.DataFrame:
    """x and y correlated 0.9, a level that follows x, and an integer column of noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.9 * x + np.sqrt(1 - 0.81) * rng.normal(size=n)
    side = np.where(x + 0.3 * rng.normal(size=n) > 0, "high", "low")
    return pd.DataFrame({"x": x, "y": y, "side": side, "count": rng.poisson(3, n)})


def mixed() -> pd.DataFrame:
    """One column of each dtype the codec keeps, several with missing values."""
    return pd.DataFrame(
        {
            "whole": [1, 2, 3, 4],
            "real": [1.5, np.nan, 2.0, 3.25],
            "text": pd.Series(["a", None, "b", "a"], dtype="str"),
            "mixed": pd.Series(["x", 1, np.nan, "x"], dtype=object),
            "flag": [True, False, True, True],
            "maybe": pd.array([True, None, False, True], dtype="boolean"),
            "kind": pd.Categorical(["u", "v", "u", None], categories=["v", "u", "z"]),
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
        }
    )


# -- the codec --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["adult", "mixed"])
def test_codec_round_trip_through_json_gives_the_table_back(name, adult):
    frame = adult if name == "adult" else mixed()
    codec = TableCodec().fit(frame)
    matrix = codec.encode(frame)
    assert matrix.dtype == np.float32 and matrix.shape == (len(frame), codec.width)
    back = TableCodec.from_json(codec.to_json()).decode(matrix)
    # Same columns, order, dtypes, categories and NaN places; numbers within float32 precision.
    pd.testing.assert_frame_equal(back, frame, check_exact=False, rtol=1e-5)
    if name == "adult":
        assert back["age"].isna().sum() == 200 and back["workclass"].isna().sum() > 0


def test_codec_layout_marks_level_blocks_and_missing_indicators(adult):
    codec = TableCodec().fit(adult)
    spans = codec.spans
    assert [s.start for s in spans[1:]] == [s.stop for s in spans[:-1]]  # contiguous, in order
    assert spans[-1].stop == codec.width
    parts = {(s.column, s.part): s.stop - s.start for s in spans}
    assert parts[("age", "value")] == 1 and parts[("age", "missing")] == 1
    assert ("hours-per-week", "missing") not in parts  # no missing indicator without NaN
    # One block column per level, plus one for missing where the column had NaN.
    assert parts[("sex", "levels")] == 2
    assert parts[("workclass", "levels")] == adult["workclass"].nunique() + 1
    matrix = codec.encode(adult)
    for span in spans:
        if span.part == "levels":  # every row has exactly one level
            np.testing.assert_array_equal(matrix[:, span.start : span.stop].sum(axis=1), 1.0)


def test_codec_decodes_any_matrix_into_valid_values(adult):
    codec = TableCodec().fit(adult)
    noise = np.random.default_rng(0).normal(0, 3, size=(500, codec.width))
    fake = codec.decode(noise)
    assert list(fake.columns) == list(adult.columns)
    assert (fake.dtypes == adult.dtypes).all()
    for name in adult.columns:
        real, made = adult[name], fake[name]
        if not real.isna().any():
            assert not made.isna().any(), name
        if real.dtype == object or str(real.dtype) == "str":
            assert set(made.dropna()) <= set(real.dropna()), name
        else:
            assert made.min() >= real.min() and made.max() <= real.max(), name
            assert (made.dropna() == made.dropna().round()).all(), name  # whole numbers only
    assert 0.3 < fake["age"].isna().mean() < 0.7  # indicator noise around 0 decides half
    assert fake["workclass"].isna().any()


# -- the baseline generators --------------------------------------------------------------------


@pytest.mark.parametrize("generator", GENERATORS)
def test_baselines_are_seeded_and_sample_valid_columns(generator, adult):
    model = generator().fit(adult)
    first = model.sample(1500, seed=1)
    pd.testing.assert_frame_equal(first, model.sample(1500, seed=1))
    assert not first.equals(model.sample(1500, seed=2))
    assert list(first.columns) == list(adult.columns)
    assert (first.dtypes == adult.dtypes).all()
    for name in ["workclass", "education", "native-country"]:
        assert set(first[name].dropna()) <= set(adult[name].dropna())
    # Missing rates and a level's frequency kept within sampling noise.
    assert abs(first["age"].isna().mean() - 0.1) < 0.03
    assert abs(first["workclass"].isna().mean() - adult["workclass"].isna().mean()) < 0.03
    assert abs((first["sex"] == "Male").mean() - (adult["sex"] == "Male").mean()) < 0.05
    assert first["hours-per-week"].notna().all()
    # A saved generator is plain JSON and samples the same rows after loading.
    saved = model.to_json()
    json.loads(saved)
    pd.testing.assert_frame_equal(generator.from_json(saved).sample(1500, seed=1), first)


def test_copula_keeps_a_strong_correlation_that_independent_columns_lose():
    frame = correlated(2000, seed=0)
    copula = GaussianCopula().fit(frame).sample(2000, seed=0)
    independent = IndependentColumns().fit(frame).sample(2000, seed=0)
    assert np.corrcoef(copula["x"], copula["y"])[0, 1] > 0.8  # observed 0.90
    assert abs(np.corrcoef(independent["x"], independent["y"])[0, 1]) < 0.2  # observed -0.04
    # The level that follows x follows it in the copula's rows only.
    assert copula.groupby("side")["x"].mean()["high"] > 0.5  # observed 0.62
    assert abs(independent.groupby("side")["x"].mean()["high"]) < 0.2  # observed -0.003


# -- the scores ---------------------------------------------------------------------------------


def test_two_sample_auc_tells_noise_and_garbage_from_real_rows():
    real, held_out = correlated(1000, seed=1), correlated(1000, seed=2)
    same = two_sample_auc(real, held_out)
    independent = two_sample_auc(held_out, IndependentColumns().fit(real).sample(1000, seed=0))
    garbage = pd.DataFrame(
        {"x": np.full(1000, 7.0), "y": np.full(1000, -7.0), "side": "low", "count": 50}
    )
    assert same < 0.6  # observed 0.52: two real samples cannot be told apart
    assert independent > 0.75  # observed 0.90: the lost correlation gives the rows away
    assert two_sample_auc(held_out, garbage) > 0.99


def test_column_distances_are_ks_and_total_variation():
    real = correlated(500, seed=1)
    assert column_distances(real, real) == {
        "columns": {"x": 0.0, "y": 0.0, "side": 0.0, "count": 0.0},
        "mean": 0.0,
    }
    fake = real.assign(x=real["x"] + 0.5, side="high")
    fake.loc[:99, "count"] = np.nan  # missing values count as lowest: at least a 0.2 gap
    distances = column_distances(real, fake)["columns"]
    assert distances["x"] == pytest.approx(stats.ks_2samp(real["x"], fake["x"]).statistic)
    assert distances["side"] == pytest.approx((real["side"] == "low").mean())
    assert distances["count"] >= 0.2
    assert distances["y"] == 0.0


def test_correlation_difference_is_zero_for_equal_tables_and_grows_without_correlation():
    real, held_out = correlated(1000, seed=1), correlated(1000, seed=2)
    assert correlation_difference(real, real) == pytest.approx(0.0, abs=1e-12)
    copula = correlation_difference(held_out, GaussianCopula().fit(real).sample(1000, seed=0))
    independent = IndependentColumns().fit(real).sample(1000, seed=0)
    # 10 pairs of encoded columns (x, y, side=high, side=low, count), 6 of them correlated.
    assert copula < 0.15  # observed 0.07
    assert correlation_difference(held_out, independent) > 0.3  # observed 0.39


def test_utility_of_real_rows_is_near_one_and_of_independent_noise_lower():
    train, test = correlated(600, seed=1), correlated(600, seed=2)
    other_real = correlated(600, seed=3)  # real rows in place of generated ones
    same = utility(other_real, train, test, target="side", task="binary")
    assert same["metric"] == "roc_auc" and same["real"] > 0.9  # observed 0.967
    assert same["ratio"] == pytest.approx(1.0, abs=0.03)  # observed 1.0005
    noise = IndependentColumns().fit(train).sample(600, seed=0)
    # Chance-level AUC would give 0.5 / 0.967 = 0.52; observed 0.62.
    assert utility(noise, train, test, "side", "binary")["ratio"] < 0.75
    regression = utility(other_real, train, test, target="y", task="regression")
    assert regression["metric"] == "rmse"
    assert regression["ratio"] == pytest.approx(1.0, abs=0.1)  # observed 0.993


def test_table_scores_are_one_flat_dict_of_floats(adult):
    train, test = adult.iloc[:1000], adult.iloc[1000:]
    fake = GaussianCopula().fit(train).sample(1000, seed=0)
    scores = table_scores(test, fake, real_train=train, target="income >50K", task="binary", seed=0)
    assert json.loads(json.dumps(scores)) == scores
    assert all(isinstance(v, float) for v in scores.values())
    assert {f"column_distance.{name}" for name in adult.columns} <= set(scores)
    assert 0.6 < scores["two_sample_auc"] <= 1.0  # observed 0.97: a copula is not the data
    assert scores["column_distance_mean"] < 0.1  # but its columns are close (observed 0.035)
    assert 0.5 < scores["utility_ratio"] < 1.05  # observed 0.83
    assert scores["utility_roc_auc_real"] > 0.85  # observed 0.87
    assert two_sample_auc(train, test) < 0.6  # two real halves: observed 0.49


def test_image_scores_separate_real_images_from_noise():
    rng = np.random.default_rng(0)

    def bars(n):  # 8x8 images with a bright horizontal or vertical bar
        images = rng.normal(30, 10, (n, 8, 8))
        for image, vertical, at in zip(images, rng.integers(0, 2, n), rng.integers(1, 5, n)):
            image[
                (slice(1, 7), slice(at, at + 2)) if vertical else (slice(at, at + 2), slice(1, 7))
            ] = 220
        return images

    real, held_out = bars(300), bars(300)
    noise = rng.uniform(0, 255, (300, 8, 8))
    same, different = image_scores(real, held_out), image_scores(real, noise)
    assert set(same) == {"two_sample_auc", "frechet_distance"}
    assert same["two_sample_auc"] < 0.65  # observed 0.47
    assert different["two_sample_auc"] > 0.95  # observed 1.0
    # Random-CNN features are small: observed 0.0007 for real images, 0.067 for noise.
    assert different["frechet_distance"] > 10 * same["frechet_distance"]
