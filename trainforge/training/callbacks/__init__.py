"""Callbacks: everything optional in the training loop, one class per module."""

from trainforge.training.callbacks.base import Callback, Monitor

__all__ = ["Callback", "Monitor"]
