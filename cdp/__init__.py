"""MicroCDP core: settings, warehouse, CLI, pipeline runner and the pieces every layer shares."""

__version__ = "0.1.0"
