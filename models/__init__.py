"""ML layer: feature sets, LightGBM propensity, clustering, model registry, batch scoring, drift.

Importing the package sets ``OMP_WAIT_POLICY=PASSIVE`` (unless set): LightGBM's and
scikit-learn's OpenMP threads otherwise spin and slow fits 4-10x on a busy machine (PITFALLS).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
