"""Great Expectations quality gates: raw inputs before identity, marts before publish.

Entry points live in ``cdp.quality.gate`` (``run_raw_gate``, ``run_mart_gate``); this package
module stays import-light (Great Expectations takes seconds to import).
"""
