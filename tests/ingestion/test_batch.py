"""The background producer that keeps reading and validation ahead of loading."""

from __future__ import annotations

import threading
import time

import pytest

from ingestion.batch import run_ahead


def test_run_ahead_yields_every_item_in_order_produced_in_another_thread():
    producers = []

    def produce():
        for n in range(5):
            producers.append(threading.current_thread())
            yield n

    assert list(run_ahead(produce())) == [0, 1, 2, 3, 4]
    assert threading.current_thread() not in producers


def test_run_ahead_passes_none_through_and_raises_where_the_producer_failed():
    def produce():
        yield None
        yield 1
        raise ValueError("damaged input")

    items = run_ahead(produce())
    assert [next(items), next(items)] == [None, 1]
    with pytest.raises(ValueError, match="damaged input"):
        next(items)


def test_run_ahead_produces_at_most_the_given_number_of_items_ahead():
    produced = []

    def produce():
        for n in range(6):
            produced.append(n)
            yield n

    items = run_ahead(produce(), ahead=2)
    assert next(items) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # a third item ahead would have been produced by now
    assert produced == [0, 1, 2]
    assert list(items) == [1, 2, 3, 4, 5]
