"""Deterministic generator of realistic, dirty source data plus identity ground truth.

``generate(GenerateConfig(...))`` writes the landing files of every source (CRM customers and
orders, Segment-style analytics events, third-party intent, consent, erasure requests) and a truth
folder (``identities.csv``, ``crm_duplicates.csv``, ``summary.json``).
"""

from cdp.generate.config import GenerateConfig
from cdp.generate.generator import generate

__all__ = ["GenerateConfig", "generate"]
