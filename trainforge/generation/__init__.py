"""Generative models as a task: the parts that do not depend on the run pipeline.

``table_codec`` turns a mixed-type table into a float matrix a generator can learn and back;
``baseline`` holds two simple seeded table generators (independent columns, a Gaussian copula)
that any learned generator must beat; ``scores`` measures generated rows against held-out real
rows (a real-versus-generated classifier, per-column distances, correlations, and the utility
of training a model on generated rows).
"""
