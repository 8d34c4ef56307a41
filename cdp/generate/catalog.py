"""A fixed product catalog and site pages, pre-rendered as JSON fragments for fast event writing."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from cdp.generate import vocab

SITE = "https://shop.example.com"
PRODUCTS_PER_CATEGORY = 60


@dataclass(frozen=True, slots=True)
class Product:
    """One product; ``page`` is the JSON page object without its closing ``referrer`` field."""

    product_id: str
    category: str
    name: str
    price_cents: int
    page: str
    viewed_props: str


def page_head(path: str, title: str) -> str:
    """Start of a page JSON object (url, path, title); the referrer is appended later."""
    return f'{{"url":"{SITE}{path}","path":"{path}","title":"{title}"'


def money(cents: int) -> str:
    """Cents as a decimal string with two places, e.g. ``5990`` -> ``59.90``."""
    return f"{cents // 100}.{cents % 100:02d}"


def _build() -> dict[str, tuple[Product, ...]]:
    rng = random.Random("microcdp-catalog-v1")
    out: dict[str, tuple[Product, ...]] = {}
    for cat in vocab.CATEGORIES:
        lo, hi = vocab.CATEGORY_PRICE[cat]
        items = []
        for i in range(PRODUCTS_PER_CATEGORY):
            pid = f"{cat[:3].upper()}-{i + 1:04d}"
            name = f"{rng.choice(vocab.PRODUCT_ADJECTIVES)} {rng.choice(vocab.PRODUCT_NOUNS[cat])}"
            cents = int(math.exp(rng.uniform(math.log(lo), math.log(hi)))) // 10 * 10 + 9
            props = (
                f'{{"product_id":"{pid}","category":"{cat}","name":"{name}",'
                f'"price":{money(cents)},"currency":"USD"}}'
            )
            items.append(Product(pid, cat, name, cents, page_head(f"/p/{pid}", name), props))
        out[cat] = tuple(items)
    return out


PRODUCTS = _build()
HOME = page_head("/", "Shop - Home")
CART = page_head("/cart", "Your cart")
CHECKOUT = page_head("/checkout", "Checkout")
CONFIRMATION = page_head("/checkout/complete", "Thank you for your order")
CATEGORY_PAGES = {c: page_head(f"/c/{c}", f"{c.capitalize()} - Shop") for c in vocab.CATEGORIES}
SEARCH_PAGES = {
    q: page_head(f"/search?q={q.replace(' ', '+')}", f"Search: {q}")
    for qs in vocab.SEARCH_QUERIES.values()
    for q in qs
}
