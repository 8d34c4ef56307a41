"""Connected components over identity links (union–find with path halving)."""

from __future__ import annotations

from collections.abc import Iterable


def connected_components(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Map every node to a representative node of its component."""
    parent: dict[str, str] = {node: node for node in nodes}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in edges:
        root_left, root_right = find(left), find(right)
        if root_left != root_right:
            # Deterministic: the smaller key becomes the root.
            if root_right < root_left:
                root_left, root_right = root_right, root_left
            parent[root_right] = root_left
    return {node: find(node) for node in list(parent)}
