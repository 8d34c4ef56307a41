"""YAML for configuration files people write by hand: safe, and strict about duplicate keys.

PyYAML silently keeps the last of two equal keys, so a typo'd copy of a line would override the
first without a word; every MicroCDP config file (segments, column mappings, REST connectors)
is read with ``StrictLoader`` instead, which rejects it with the line of the duplicate.
"""

from __future__ import annotations

from typing import Any

import yaml


class StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_strict(text: str, loader: type[StrictLoader] = StrictLoader) -> Any:
    """Parse YAML text with ``loader`` (``StrictLoader`` or a subclass of it)."""
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
