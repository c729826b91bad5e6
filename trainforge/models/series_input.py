"""Series inputs checked the way scikit-learn checks a table, for the sequence estimators.

A 3-D array ``(series, steps, channels)`` is taken as it is; anything else goes through
``validate_data`` (sparse, complex, empty, 1-D and mismatched inputs refused with scikit-learn's
messages, ``n_features_in_`` set and checked) and is split into ``channels``. NaN ends a
shorter series; infinite values are refused.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import column_or_1d, validate_data

from trainforge.data import sequences


class SeriesInput:
    def _series(self, X, y=None, reset: bool = False, y_numeric: bool = False):
        """``(series (N, T, C), lengths, y)``; ``reset`` when fitting (``y`` checked too)."""
        if isinstance(X, np.ndarray) and X.ndim == 3:
            array = np.asarray(X, dtype=np.float32)
            width = array.shape[1] * array.shape[2]
            if reset:
                self.n_features_in_ = int(width)
                if y is None:
                    raise ValueError("this estimator requires y to be passed, but y is None")
                y = column_or_1d(y, warn=True)
            elif width != self.n_features_in_:
                raise ValueError(
                    f"X has {width} values per series, but {type(self).__name__} was fitted "
                    f"with {self.n_features_in_}"
                )
        else:
            checked = dict(dtype=np.float32, ensure_all_finite="allow-nan", reset=reset)
            if reset:
                checked.update(ensure_min_samples=2, y_numeric=y_numeric)
                X, y = validate_data(self, X, y, **checked)
            else:
                X = validate_data(self, X, **checked)
            array = sequences.as_series(X, self.channels)
        if np.isinf(array).any():
            raise ValueError("Input X contains infinity; a series may only end in NaN")
        if y is not None and len(y) != len(array):
            raise ValueError(f"X has {len(array)} series but y has {len(y)} values")
        return array, sequences.series_lengths(array), y
