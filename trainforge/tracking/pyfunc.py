"""A trainforge model bundle as an MLflow pyfunc model, without pickle.

The MLflow model folder holds the bundle under ``data/`` and names this module as its loader;
``mlflow.pyfunc.load_model`` then calls ``_load_pyfunc(data_path)``, which loads the bundle the
usual safe way (trainforge.bundle). Nothing is cloudpickled, so loading runs no stored code.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trainforge import __version__


def save_pyfunc(bundle: Path, path: Path) -> Path:
    """Write an MLflow pyfunc model folder at ``path`` wrapping the bundle folder ``bundle``."""
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        str(path),
        loader_module=__name__,
        data_path=str(bundle),
        pip_requirements=[f"trainforge=={__version__}"],  # no slow requirement inference
    )
    return path


class PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: raw rows in, trainforge's predictions out.

    ``predict`` returns the columns of ``trainforge predict`` without the input columns: a
    ``prediction`` column and, for classifiers, one ``proba_<class>`` column per class.
    """

    def __init__(self, model):
        self.model = model

    def predict(self, model_input, params=None) -> pd.DataFrame:
        frame = self.model.predict_frame(pd.DataFrame(model_input))
        keep = ["prediction"] + [c for c in frame.columns if str(c).startswith("proba_")]
        return frame[keep].reset_index(drop=True)


def _load_pyfunc(data_path: str) -> PyfuncModel:
    from trainforge.bundle import load_bundle

    return PyfuncModel(load_bundle(Path(data_path)))
