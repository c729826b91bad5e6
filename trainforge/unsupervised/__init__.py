"""Clustering and dimensionality reduction: the tasks with no target (see docs/unsupervised.md)."""
