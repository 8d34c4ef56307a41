"""The docs describe what the code does."""

from __future__ import annotations

import re

from cdp.contracts import CONTRACTS
from cdp.settings import REPO_ROOT


def test_landing_contract_table_matches_the_code():
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `([a-z_]+/[a-z_]+)` \|.*$", text, flags=re.MULTILINE)
    }
    assert set(rows) == set(CONTRACTS)
    for name, contract in CONTRACTS.items():
        _, required, optional, *_ = (cell.strip() for cell in rows[name].strip("|").split("|"))
        fields = contract.input_fields
        assert required == ", ".join(f"`{f.name}`" for f in fields if f.required)
        assert optional == ", ".join(f"`{f.name}`" for f in fields if not f.required)


def test_readme_links_resolve():
    readme = (REPO_ROOT / "README.md").read_text()
    for target, anchor in re.findall(r"\]\(([^)#]+\.md)(?:#([a-z-]+))?\)", readme):
        page = (REPO_ROOT / target).read_text()
        assert page, target
        if anchor:
            headings = {
                re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", page, flags=re.MULTILINE)
            }
            assert anchor in headings, f"{target}#{anchor}"
