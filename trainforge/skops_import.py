"""skops.io, imported without importing torch.

On its first import skops.io lists scikit-learn's estimators (``sklearn.utils.all_estimators``),
and the package walk behind that list imports every subpackage of scikit-learn, the torch
adapter of its array-API layer among them, which imports torch: 1.2 s of the 3.5 s a
``trainforge predict`` of a random forest took. The list leaves that adapter out anyway, so a
placeholder stands in for it while skops.io is imported, and is removed after: a later import
of the adapter (scikit-learn's array API on torch tensors) finds the real one.
"""

from __future__ import annotations

import sys
import types

ADAPTER = "sklearn.externals.array_api_compat.torch"


def skops_io():
    """The ``skops.io`` module."""
    if "skops.io" not in sys.modules and ADAPTER not in sys.modules:
        sys.modules[ADAPTER] = types.ModuleType(ADAPTER)  # no __path__: the walk stops there
        try:
            import skops.io  # noqa: F401
        finally:
            del sys.modules[ADAPTER]
    import skops.io

    return skops.io
