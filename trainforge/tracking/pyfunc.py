"""A trainforge model bundle as an MLflow pyfunc model, without pickle.

The MLflow model folder holds the bundle under ``data/`` and names this module as its loader;
``mlflow.pyfunc.load_model`` then calls ``_load_pyfunc(data_path)``, which loads the bundle the
usual safe way (trainforge.bundle). Nothing is cloudpickled, so loading runs no stored code.

``log_pyfunc`` logs such a folder as an MLflow 3 *logged model* of a run (its own entity, listed
under the run's logged models and loadable as ``models:/<model id>`` or ``runs:/<run id>/<name>``).
Its requirements.txt pins the libraries the bundle needs, read from the bundle's own files
rather than inferred by MLflow (which would load the model in a subprocess).
"""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from trainforge import __version__
from trainforge.bundle import INFO_FILE

# What every bundle needs to load: its pipeline is a skops file of scikit-learn objects.
BASE_REQUIREMENTS = ("scikit-learn", "numpy", "pandas", "scipy", "skops")
# A family's ``requires`` names import names; where the distribution is named otherwise, the
# names it may be installed under (the first installed one is pinned).
DISTRIBUTIONS = {"xgboost": ("xgboost", "xgboost-cpu"), "umap": ("umap-learn",)}


def save_pyfunc(bundle: Path, path: Path, mlflow_model=None) -> Path:
    """Write an MLflow pyfunc model folder at ``path`` wrapping the bundle folder ``bundle``.

    Args:
        bundle: a trainforge bundle folder (any kind: plain, bagged, ensemble, stacked).
        path: the MLflow model folder to create (it must not exist).
        mlflow_model: an ``mlflow.models.Model`` to fill in (a logged model's ids), or None.

    Returns:
        ``path``.
    """
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        str(path),
        loader_module=__name__,
        data_path=str(bundle),
        pip_requirements=requirements(Path(bundle)),  # no slow requirement inference
        mlflow_model=mlflow_model,
    )
    return path


def log_pyfunc(client, run_id: str, experiment_id: str, bundle: Path, **model) -> str:
    """Log ``bundle`` as an MLflow logged model produced by the run ``run_id``.

    The same steps as ``mlflow.pyfunc.log_model``, through ``client`` instead of the
    process-wide tracking URI and active run: create the logged model, link it to the run as
    an output, write and upload the model folder, mark the model READY (FAILED if a step fails).

    Args:
        client: an ``MlflowClient`` of the run's store.
        model: ``name``, ``tags``, ``params``, ``model_type`` of the logged model, as
            ``MlflowClient.create_logged_model`` takes them.

    Returns:
        The logged model's id.
    """
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    logged = client.create_logged_model(experiment_id, source_run_id=run_id, **model)
    try:
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        ids = Model(
            artifact_path=logged.artifact_location,
            model_uuid=logged.model_id,
            run_id=run_id,
            model_id=logged.model_id,
        )
        with tempfile.TemporaryDirectory() as staging:
            folder = save_pyfunc(bundle, Path(staging) / "model", mlflow_model=ids)
            client.log_model_artifacts(logged.model_id, str(folder))
    except Exception:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    client.finalize_logged_model(logged.model_id, "READY")
    return logged.model_id


def requirements(bundle: Path) -> list[str]:
    """The pip requirements of a bundle, pinned to the installed versions: trainforge, the
    libraries every bundle loads with, and those of the model families inside it (an ensemble's
    members, a bagged model's folds), plus safetensors where a file is in that format.

    A version's local label (``torch 2.5.1+cpu``) is dropped, so the pin installs from PyPI.
    """
    needed: set[str] = set()
    for info_file in sorted(Path(bundle).rglob(INFO_FILE)):
        try:
            family = json.loads(info_file.read_text(encoding="utf-8")).get("family")
        except (OSError, ValueError, AttributeError):
            continue
        needed.update(_family_requires(family))
    if next(Path(bundle).rglob("*.safetensors"), None) is not None:
        needed.add("safetensors")
    pins = [_pin(name) for name in BASE_REQUIREMENTS]
    pins += sorted(_pin(name) for name in needed)
    return [f"trainforge=={__version__}", *pins]


def _family_requires(family) -> tuple[str, ...]:
    """The packages a model family needs beyond the base install (none for an unknown name,
    such as a combination of members: ``ensemble``)."""
    from trainforge.models.registry import families

    found = [f for f in families() if f.name == family]
    return found[0].requires if found else ()


def _pin(package: str) -> str:
    """``distribution==version`` for a distribution or import name (unpinned when it is not
    installed)."""
    from packaging.version import Version

    names = DISTRIBUTIONS.get(package, (package,))
    for name in names:
        try:
            return f"{name}=={Version(version(name)).public}"
        except PackageNotFoundError:
            continue
    return names[0]


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
