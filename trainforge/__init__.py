"""trainforge: build and train models of every common family with best practice by default.

The public API is imported lazily so that ``trainforge --help`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["RunSpec", "TorchModel", "train", "load", "sign", "export", "__version__"]


def __getattr__(name):
    if name == "RunSpec":
        from trainforge.spec import RunSpec

        return RunSpec
    if name in ("train", "load", "sign"):
        from trainforge import api

        return getattr(api, name)
    if name == "TorchModel":
        from trainforge.models.external import TorchModel

        return TorchModel
    if name == "export":
        from trainforge.onnx_export import export

        return export
    raise AttributeError(f"module 'trainforge' has no attribute {name!r}")
