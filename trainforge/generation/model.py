"""A trained generator as users meet it: ``sample(n, seed)`` new rows with the training columns.

Rows come back as a table with the training columns, types and category levels; an image
generator's rows are pixel columns, and ``images(n, seed)`` gives them as an array
``(n, height, width[, channels])``. The same seed gives the same samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainforge.data.images import image_shape_of
from trainforge.data.schema import Schema
from trainforge.errors import DataError


class GenerativeModel:
    """A fitted pipeline whose last step is a generator, with the training schema.

    Args:
        pipeline: a scikit-learn Pipeline (``passthrough``, then the generator).
        schema: the training schema (task ``generation``).
        family: the generator family's name.
    """

    def __init__(self, pipeline, schema: Schema, family: str):
        self.pipeline = pipeline
        self.schema = schema
        self.family = family

    task = property(lambda self: self.schema.task)
    classes = property(lambda self: [])
    has_proba = property(lambda self: False)

    def loaded(self) -> GenerativeModel:
        return self

    @property
    def generator(self):
        return self.pipeline[-1]

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        return image_shape_of([c.name for c in self.schema.columns])

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` new rows; the same ``seed`` gives the same rows."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DataError(f"sample: n must be a whole number of rows >= 1, got {n!r}")
        return self.generator.sample(int(n), seed)

    def images(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` new images ``(n, height, width[, channels])`` (image generators only)."""
        shape = self.image_shape
        if shape is None:
            raise DataError(f"{self.family} generates table rows, not images; use sample")
        pixels = self.sample(n, seed).to_numpy()
        height, width, channels = shape
        return pixels.reshape(n, height, width, channels)[..., 0 if channels == 1 else slice(None)]

    def predict(self, data):
        raise DataError(
            f"{self.family} is a generation model: it samples new rows (trainforge sample RUN "
            "-n N, or model.sample(n)); it predicts nothing"
        )

    predict_proba = predict
    predict_frame = predict
