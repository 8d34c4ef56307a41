"""Segment-spec analytics events of one visitor: sessions, funnels and logins, as JSON lines."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from cdp.generate import catalog, vocab
from cdp.generate.catalog import money
from cdp.generate.clock import iso_ms

SESSION_GAP_S = 1800  # sessions are at least 30 minutes apart
MEAN_SESSION_EVENTS = 6.0
_gap_rng = random.Random("microcdp-gaps-v1")
# seconds between two events of a session (lognormal, median ~27 s), drawn by index for speed
GAPS = tuple(int(_gap_rng.lognormvariate(3.3, 1.0)) + 2 for _ in range(4096))


@dataclass(slots=True)
class Device:
    """A browser/device with its stable anonymousId and pre-rendered context fields."""

    anonymous_id: str
    ctx: str


@dataclass(slots=True)
class Visitor:
    """Who browses: devices, CRM userId (if they log in), identify traits, journey flag."""

    devices: list[Device]
    user_id: str | None
    traits: str | None
    journey: bool
    web_order_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class WebOrder:
    """An order placed on the website (becomes a CRM order row with the same id and amount)."""

    order_id: str
    ordered_at_ms: int
    amount_cents: int
    item_count: int
    category: str


# one rendered event: (timestamp ms, line, messageId, timestamp string, anonymousId, userId)
Event = tuple[int, str, str, str, str, str | None]
T = TypeVar("T")


class UuidPool:
    """Version-4-looking UUIDs drawn from ``rng`` in batches (deterministic, fast)."""

    __slots__ = ("rng", "batch")
    SIZE = 512

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.batch: list[str] = []

    def next(self) -> str:
        """The next UUID string."""
        if not self.batch:
            h = f"{self.rng.getrandbits(128 * self.SIZE):0{32 * self.SIZE}x}"
            self.batch = [
                f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
                f"{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
                for i in range(32 * (self.SIZE - 1), -1, -32)
            ]
        return self.batch.pop()


def pick(rnd: Callable[[], float], seq: Sequence[T]) -> T:
    """A uniform choice from ``seq`` using one ``rnd()`` draw (cheaper than Random.choice)."""
    return seq[int(rnd() * len(seq))]


def make_device(rng: random.Random, ids: UuidPool) -> Device:
    """A device with a fresh anonymousId, IP, user agent and locale."""
    first = rng.choice((24, 67, 73, 98, 104, 142, 172, 203))
    ip = f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randint(1, 254)}"
    ctx = (
        f'"ip":"{ip}","userAgent":"{rng.choice(vocab.USER_AGENTS)}",'
        f'"locale":"{rng.choice(vocab.LOCALES)}"'
    )
    return Device(ids.next(), ctx)


def render_traits(email: str, phone: str | None, first: str, last: str) -> str:
    """Identify traits JSON (phone may be null)."""
    ph = f'"{phone}"' if phone else "null"
    return f'{{"email":"{email}","phone":{ph},"first_name":"{first}","last_name":"{last}"}}'


def _session_sizes(rng: random.Random, budget: int, purchases: int) -> list[tuple[int, bool]]:
    sizes = [(4 + min(6, int(rng.expovariate(1 / 2))), True) for _ in range(purchases)]
    remaining = budget - sum(s for s, _ in sizes)
    while remaining > 0:
        s = min(remaining, 1 + int(rng.expovariate(1 / (MEAN_SESSION_EVENTS - 1))))
        sizes.append((s, False))
        remaining -= s
    rng.shuffle(sizes)
    return sizes


def _place(rng: random.Random, durations: list[int], start: int, end: int) -> list[int]:
    """Session start times (seconds) in [start, end) keeping >= 30 min between sessions."""
    while durations:
        needed = sum(durations) + SESSION_GAP_S * (len(durations) - 1)
        slack = end - start - 1 - needed
        if slack >= 0:
            cuts = sorted(rng.random() for _ in durations)
            out, used = [], 0
            for i, d in enumerate(durations):
                out.append(start + int(cuts[i] * slack) + used)
                used += d + SESSION_GAP_S
            return out
        durations.pop()
    return []


class _Renderer:
    """Renders events of one visitor, keeping page and login state between calls."""

    __slots__ = ("uuids", "v", "out", "ids", "ctx", "anon", "user")

    def __init__(self, uuids: UuidPool, v: Visitor) -> None:
        self.uuids = uuids
        self.v = v
        self.out: list[Event] = []

    def use(self, device: Device, logged_in: bool) -> None:
        self.anon = device.anonymous_id
        self.ctx = f',"context":{{{device.ctx},"page":'
        self.user = self.v.user_id if logged_in else None
        if self.user:
            self.ids = f'"anonymousId":"{self.anon}","userId":"{self.user}",'
        else:
            self.ids = f'"anonymousId":"{self.anon}",'

    def page(self, ms: int, name: str, page: str, campaign: str) -> None:
        mid, ts = self.uuids.next(), iso_ms(ms)
        line = (
            f'{{"messageId":"{mid}","type":"page","name":"{name}","timestamp":"{ts}",{self.ids}'
            f'"properties":{page}{self.ctx}{page}{campaign}}}}}'
        )
        self.out.append((ms, line, mid, ts, self.anon, self.user))

    def track(self, ms: int, event: str, props: str, page: str, campaign: str) -> None:
        mid, ts = self.uuids.next(), iso_ms(ms)
        line = (
            f'{{"messageId":"{mid}","type":"track","event":"{event}","timestamp":"{ts}",{self.ids}'
            f'"properties":{props}{self.ctx}{page}{campaign}}}}}'
        )
        self.out.append((ms, line, mid, ts, self.anon, self.user))

    def identify(self, ms: int, page: str) -> None:
        mid, ts = self.uuids.next(), iso_ms(ms)
        line = (
            f'{{"messageId":"{mid}","type":"identify","timestamp":"{ts}",{self.ids}'
            f'"traits":{self.v.traits}{self.ctx}{page}}}}}'
        )
        self.out.append((ms, line, mid, ts, self.anon, self.user))


def _campaign(rng: random.Random) -> str:
    if rng.random() >= 0.2:
        return ""
    name, source, medium = pick(rng.random, vocab.CAMPAIGNS)
    return f',"campaign":{{"name":"{name}","source":"{source}","medium":"{medium}"}}'


def _session(
    r: _Renderer,
    rng: random.Random,
    device: Device,
    start_ms: int,
    gaps: list[int],
    purchase_id: str | None,
    login: bool,
) -> WebOrder | None:
    """Render one session; log in (identify) after the first event when ``login`` is set."""
    rnd = rng.random
    ms = start_ms
    n = len(gaps) + 1
    cat = pick(rnd, vocab.CATEGORIES)
    product = None
    cart: list[tuple[catalog.Product, int]] = []
    ref = pick(rnd, vocab.REFERRERS)
    roll = rnd()
    if roll < 0.4:
        name, head = "Home", catalog.HOME
    elif roll < 0.7:
        name, head = "Category", catalog.CATEGORY_PAGES[cat]
    else:
        product = pick(rnd, catalog.PRODUCTS[cat])
        name, head = "Product", product.page
    page = f'{head},"referrer":"{ref}"}}'
    r.page(ms, name, page, _campaign(rng))
    url_ref = head[8 : head.index('","path"')]
    tail = 3 if purchase_id else 0
    if login:
        ms += (gaps[0] * 1000 // 2) if gaps else 1000
        r.use(device, True)
        r.identify(ms, page)
    for i in range(1, n):
        ms += gaps[i - 1] * 1000
        left = n - i
        if purchase_id and left <= tail:
            if product is None:
                product = pick(rnd, catalog.PRODUCTS[cat])
            kind = ("add", "checkout", "order")[tail - left]
            if kind == "add" and cart and rnd() < 0.3:
                kind = "view"  # already has items; one more look before checkout
        else:
            x = rnd()
            if x < 0.15:
                kind = "page"
            elif x < 0.27:
                kind = "search"
            elif x < 0.72 or product is None:
                kind = "view"
            elif x < 0.92:
                kind = "add"
            else:
                kind = "checkout" if cart else "view"
        new_ref = f',"referrer":"{url_ref}"}}'
        if kind == "page":
            cat = pick(rnd, vocab.CATEGORIES)
            head = catalog.CATEGORY_PAGES[cat]
            r.page(ms, "Category", head + new_ref, "")
        elif kind == "search":
            cat = pick(rnd, vocab.CATEGORIES)
            q = pick(rnd, vocab.SEARCH_QUERIES[cat])
            head = catalog.SEARCH_PAGES[q]
            props = f'{{"query":"{q}","category":"{cat}"}}'
            r.track(ms, "product_searched", props, head + new_ref, "")
        elif kind == "view":
            product = pick(rnd, catalog.PRODUCTS[cat])
            head = product.page
            r.track(ms, "product_viewed", product.viewed_props, head + new_ref, "")
        elif kind == "add":
            assert product is not None
            qty = 1 if rnd() < 0.8 else 2 + int(rnd() * 2)
            cart.append((product, qty))
            props = (
                f'{{"product_id":"{product.product_id}","category":"{product.category}",'
                f'"price":{money(product.price_cents)},"quantity":{qty}}}'
            )
            r.track(ms, "product_added_to_cart", props, product.page + new_ref, "")
            continue  # stays on the product page
        elif kind == "checkout":
            head = catalog.CHECKOUT
            total = sum(p.price_cents * q for p, q in cart)
            items = sum(q for _, q in cart)
            props = f'{{"revenue":{money(total)},"currency":"USD","quantity":{items}}}'
            r.track(ms, "checkout_started", props, head + new_ref, "")
        else:
            head = catalog.CONFIRMATION
            total = sum(p.price_cents * q for p, q in cart)
            items = sum(q for _, q in cart)
            top = max(cart, key=lambda pq: pq[0].price_cents * pq[1])[0].category
            props = (
                f'{{"order_id":"{purchase_id}","revenue":{money(total)},"currency":"USD",'
                f'"quantity":{items},"category":"{top}"}}'
            )
            r.track(ms, "order_completed", props, head + new_ref, "")
            assert purchase_id is not None
            return WebOrder(purchase_id, ms, total, items, top)
        url_ref = head[8 : head.index('","path"')]
    return None


def visitor_events(
    rng: random.Random, uuids: UuidPool, v: Visitor, budget: int, start_s: int, end_s: int
) -> tuple[list[Event], list[WebOrder]]:
    """All events of one visitor in time order, plus the web orders they placed."""
    logins = len(v.devices) if v.traits is not None else 0  # identify events come on top
    sizes = _session_sizes(rng, max(1, budget - logins), len(v.web_order_ids))
    rnd = rng.random
    gaps = [[GAPS[int(rnd() * 4096)] for _ in range(s - 1)] for s, _ in sizes]
    durations = [sum(g) + 60 for g in gaps]
    starts = _place(rng, durations, start_s, end_s)
    k = len(starts)
    n_dev = len(v.devices)
    device_of = [0 if n_dev == 1 or rng.random() < 0.7 else 1 for _ in range(k)]
    # session index at which each device logs in (identify); None = never
    login_at: list[int | None] = [None] * n_dev
    can_login = v.traits is not None
    if can_login:
        for d in range(n_dev):
            mine = [i for i in range(k) if device_of[i] == d]
            if not mine:
                continue
            if v.journey and d == 0 and len(mine) >= 2:
                login_at[d] = mine[rng.randint(1, len(mine) - 1)]
            elif v.user_id is not None or d == 0:
                login_at[d] = mine[0]
    r = _Renderer(uuids, v)
    logged = [False] * n_dev
    orders: list[WebOrder] = []
    order_ids = list(v.web_order_ids)
    for i in range(k):
        d = device_of[i]
        purchase = sizes[i][1] and bool(order_ids) and v.user_id is not None
        login = not logged[d] and can_login and (login_at[d] == i or purchase)
        r.use(v.devices[d], logged[d])
        start_ms = starts[i] * 1000 + int(rnd() * 1000)
        pid = order_ids[0] if purchase else None
        order = _session(r, rng, v.devices[d], start_ms, gaps[i], pid, login)
        if login:
            logged[d] = True
        if order is not None:
            orders.append(order)
            order_ids.pop(0)
    return r.out, orders
