"""ML layer: feature sets, LightGBM propensity, clustering, model registry, batch scoring, drift.

The weekly retraining DAG and its models land with the ML issue; the warehouse already reserves
the ``ml`` schema for them (see docs/architecture.md).
"""
