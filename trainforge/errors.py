"""Errors a person can act on.

Every error trainforge raises on bad input is a ``TrainforgeError`` whose message is one line
naming the problem and what to do. The CLI prints that line and exits with code 2.
"""

import difflib


def suggest(word: str, options) -> str:
    """``; did you mean 'x'?`` for the closest options, or an empty string."""
    close = difflib.get_close_matches(word, [str(o) for o in options], n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class TrainforgeError(Exception):
    """Base class for errors caused by the user's input rather than by a bug."""


class SpecError(TrainforgeError):
    """The run spec (YAML, CLI flags or Python arguments) is invalid."""


class DataError(TrainforgeError):
    """A data file or frame cannot be used as given."""


class BundleError(TrainforgeError):
    """A saved model cannot be loaded safely."""


class RunError(TrainforgeError):
    """A run cannot be found or did not produce a usable model."""


class CheckpointError(TrainforgeError):
    """A checkpoint is incomplete, corrupt, or belongs to a different model or spec."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint was written by a different model, spec or training data."""


class TrainingError(TrainforgeError):
    """Training cannot go on: non-finite inputs, or a loss that became NaN or infinite."""


class TrackingError(TrainforgeError):
    """The experiment tracking store or server cannot be used."""


class UnseenValueWarning(UserWarning):
    """Rows hold a value the model never saw where it expects a fixed set (a boolean column):
    the value is read as missing."""


class CheckpointWarning(RuntimeWarning):
    """A checkpoint could not be used and training went back to an earlier one (or to the
    start): the run shows it as a warning and keeps it in the manifest."""
