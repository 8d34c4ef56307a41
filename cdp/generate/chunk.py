"""Generate every output for one chunk of persons (runs in a worker process)."""

from __future__ import annotations

import csv
import io
import random
import zlib
from dataclasses import dataclass, field

from cdp.generate import consent, crm, thirdparty
from cdp.generate.clock import DAY, monday_of_day
from cdp.generate.dirt import (
    MALFORMED_EVENT_KINDS,
    US_PHONE_FORMATS,
    corrupt_event_line,
    mixed_case,
)
from cdp.generate.events import (
    Device,
    Event,
    UuidPool,
    Visitor,
    WebOrder,
    make_device,
    render_traits,
    visitor_events,
)
from cdp.generate.people import Person, make_person
from cdp.generate.plan import ChunkTask

GZIP_LEVEL = 1
JOURNEY_SHARE = 0.35  # CRM visitors who browse anonymously before their first login
SIGNUP_SHARE = 0.10  # anonymous visitors who sign up (identify with email, no CRM record)


@dataclass
class ChunkResult:
    """Text per output file, gzip members per event week, counters and malformed counts."""

    index: int
    text: dict[str, str]
    weeks: dict[int, bytes]
    counts: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    order_cents: int = 0


class _Csv:
    """A CSV buffer per output name."""

    def __init__(self, names: list[str]) -> None:
        self.bufs = {n: io.StringIO() for n in names}
        self.writers = {n: csv.writer(b, lineterminator="\n") for n, b in self.bufs.items()}

    def rows(self, name: str, rows: list[list[str]]) -> None:
        self.writers[name].writerows(rows)

    def text(self) -> dict[str, str]:
        return {n: b.getvalue() for n, b in self.bufs.items()}


class _Weeks:
    """Event lines bucketed by the ISO week (Monday day number) of the file they go to."""

    def __init__(self, window: tuple[int, int]) -> None:
        self.first = monday_of_day(window[0] // DAY)
        self.last = monday_of_day((window[1] - 1) // DAY)
        self.lines: dict[int, list[tuple[int, str]]] = {}
        self.replays: dict[int, list[str]] = {}
        self.malformed: dict[int, int] = {}
        self.late = 0

    def week_of(self, ms: int) -> int:
        return monday_of_day(ms // 1000 // DAY)

    def add(
        self, visitor_events: list[Event], dirt: list[tuple[int, str]]
    ) -> tuple[set[str], set[str]]:
        """Route a visitor's events to weeks, applying planned dirt; return valid anon/user ids."""
        if not dirt:  # fast path: events are in time order, so switch buckets at week ends
            end = -1
            bucket: list[tuple[int, str]] = []
            for ev in visitor_events:
                ms = ev[0]
                if ms >= end:
                    week = self.week_of(ms)
                    end = (week + 7) * DAY * 1000
                    bucket = self.lines.setdefault(week, [])
                bucket.append((ms, ev[1]))
            return {e[4] for e in visitor_events}, {e[5] for e in visitor_events if e[5]}
        anon: set[str] = set()
        users: set[str] = set()
        plan = dict(dirt)
        for i, (ms, line, mid, ts, a, u) in enumerate(visitor_events):
            week = self.week_of(ms)
            kind = plan.get(i)
            if kind in MALFORMED_EVENT_KINDS:
                bad = corrupt_event_line(line, kind, mid, ts)
                self.lines.setdefault(week, []).append((ms, bad))
                self.malformed[week] = self.malformed.get(week, 0) + 1
                continue
            anon.add(a)
            if u:
                users.add(u)
            if kind == "late" and week + 7 <= self.last:
                week += 7
                self.late += 1
            self.lines.setdefault(week, []).append((ms, line))
            if kind == "duplicate":
                self.replays.setdefault(week, []).append(line)
        return anon, users

    def compress(self) -> tuple[dict[int, bytes], int]:
        """One gzip member per week (time-sorted within the chunk), and the line count."""
        out, n = {}, 0
        for week in sorted(self.lines):
            rows = sorted(self.lines[week])
            lines = [line for _, line in rows] + self.replays.get(week, [])
            n += len(lines)
            z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            out[week] = z.compress(("\n".join(lines) + "\n").encode()) + z.flush()
        return out, n


OUTPUTS = ["customers", "orders", "intent", "consent", "erasure", "identities", "crm_duplicates"]
COUNTERS = ("crm_rows", "order_rows", "duplicates", "history", "journeys", "signups",
            "web_orders", "unknown_intent")  # fmt: skip


def _by_person(items: list[tuple]) -> dict[int, list[tuple]]:
    """Group planned ``(person, *details)`` tuples by person."""
    out: dict[int, list[tuple]] = {}
    for p, *rest in items:
        out.setdefault(p, []).append(tuple(rest))
    return out


class _Chunk:
    """Generation state of one chunk: RNG, buffers, counters."""

    def __init__(self, task: ChunkTask) -> None:
        self.task = task
        self.rng = random.Random(f"microcdp:{task.seed}:{task.index}")
        self.window = task.window
        self.uuids = UuidPool(self.rng)
        self.out = _Csv(OUTPUTS)
        self.weeks = _Weeks(task.window)
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.malformed = {"customers": 0, "orders": 0, "intent": 0, "consent": 0}
        self.cents = 0
        self.bad_crm = _by_person(task.malformed_crm)
        self.bad_orders = _by_person(task.malformed_orders)
        self.bad_consent = _by_person(task.malformed_consent)
        self.bad_intent = set(task.malformed_intent)

    def crm_person(self, k: int, i: int) -> None:
        """CRM rows, truth, web behaviour, orders and side sources of CRM person ``i``."""
        t, rng = self.task, self.rng
        person = make_person(i + 1, rng, self.window[0])
        primary = crm.crm_id(int(t.crm_id[k]))
        dup = crm.crm_id(int(t.dup_id[k])) if t.dup_id[k] else None
        rows, has_email, dup_has_email = crm.customer_rows(
            person, primary, dup, bool(t.history[k]), self.window, rng
        )
        for kind, num in self.bad_crm.get(i, []):
            rows.append(crm.malformed_customer_row(kind, num, rng, self.window[0]))
            self.malformed["customers"] += 1
        self.out.rows("customers", rows)
        self.counts["crm_rows"] += len(rows)
        self.counts["history"] += int(t.history[k])
        ids = [primary] + ([dup] if dup else [])
        pid = person.person_id
        self.out.rows("identities", [["crm", "crm_customer_id", c, pid] for c in ids])
        dups = [[pid, primary, str(has_email).lower()]]
        if dup:
            self.counts["duplicates"] += 1
            dups.append([pid, dup, str(dup_has_email).lower()])
        self.out.rows("crm_duplicates", dups)

        numbers = list(range(int(t.order_start[k]), int(t.order_start[k]) + int(t.n_orders[k])))
        web = self.browse(k, i, person, primary, numbers) if t.crm_budget[k] else {}
        self.orders(i, numbers, web, primary, dup)
        self.side_sources(k, i, person, primary, ids)

    def browse(
        self, k: int, i: int, person: Person, primary: str, numbers: list[int]
    ) -> dict[str, WebOrder]:
        """Website events of a CRM person; returns the orders they placed online."""
        rng = self.rng
        devices = [make_device(rng, self.uuids) for _ in range(1 if rng.random() < 0.7 else 2)]
        shown = mixed_case(person.email, rng) if rng.random() < 0.2 else person.email
        phone = person.phone(rng.randrange(US_PHONE_FORMATS)) if rng.random() < 0.5 else None
        traits = render_traits(shown, phone, person.first_name, person.last_name)
        journey = rng.random() < JOURNEY_SHARE
        picked = sorted(rng.sample(numbers, int(self.task.web_orders[k])))
        v = Visitor(devices, primary, traits, journey, [crm.order_id(n) for n in picked])
        budget = int(self.task.crm_budget[k])
        evs, orders = visitor_events(rng, self.uuids, v, budget, *self.window)
        self.counts["journeys"] += int(journey)
        self.counts["web_orders"] += len(orders)
        anon, users = self.weeks.add(evs, self.task.event_dirt.get(i, []))
        self.identity_rows(person.person_id, anon, users, devices)
        return {o.order_id: o for o in orders}

    def orders(
        self, i: int, numbers: list[int], web: dict[str, WebOrder], primary: str, dup: str | None
    ) -> None:
        """Order rows (web orders keep their event time and amount) plus planned bad rows."""
        rng, rows = self.rng, []
        for n in numbers:
            oid = crm.order_id(n)
            o = web.get(oid)
            if o is not None:
                at, amount, items, cat = (
                    o.ordered_at_ms // 1000,
                    o.amount_cents,
                    o.item_count,
                    o.category,
                )
            else:
                at, amount, items, cat = crm.offline_order(rng, self.window)
            cid = dup if dup and rng.random() < 0.3 else primary
            rows.append(crm.order_row(oid, cid, at, amount, items, cat, rng))
            self.cents += amount
        for kind, num in self.bad_orders.get(i, []):
            rows.append(crm.malformed_order_row(kind, num, primary, rng, self.window[0]))
            self.malformed["orders"] += 1
        self.out.rows("orders", rows)
        self.counts["order_rows"] += len(rows)

    def side_sources(self, k: int, i: int, person: Person, primary: str, ids: list[str]) -> None:
        """Intent, consent and erasure rows of one CRM person (plus planned bad rows)."""
        rng, window, out = self.rng, self.window, self.out
        if rng.random() < thirdparty.INTENT_SHARE:
            out.rows("intent", thirdparty.intent_rows(person.email, rng, window))
        if i in self.bad_intent:
            out.rows("intent", [thirdparty.malformed_intent_row(person.email, rng, window)])
            self.malformed["intent"] += 1
        if rng.random() < 0.01:
            out.rows(
                "intent", [thirdparty.unknown_intent_row(f"{self.task.index}x{k}", rng, window)]
            )
            self.counts["unknown_intent"] += 1
        if rng.random() < consent.CONSENT_SHARE:
            out.rows("consent", consent.consent_rows(person.email, ids, rng, window))
        for (kind,) in self.bad_consent.get(i, []):
            out.rows("consent", [consent.malformed_consent_row(kind, person.email, rng, window)])
            self.malformed["consent"] += 1
        if i in self.task.erasures:
            num = self.task.erasures[i]
            out.rows("erasure", [consent.erasure_row(num, person.email, primary, rng, window)])

    def anonymous_visitor(self, k: int, j: int) -> None:
        """Events of a visitor without CRM record; some sign up with a fresh email."""
        rng = self.rng
        n = j + 1
        devices = [make_device(rng, self.uuids)]
        traits = None
        if rng.random() < SIGNUP_SHARE:
            person = make_person(n, rng, self.window[0])
            traits = render_traits(person.email, None, person.first_name, person.last_name)
            self.counts["signups"] += 1
        v = Visitor(devices, None, traits, True)
        evs, _ = visitor_events(rng, self.uuids, v, int(self.task.anon_budget[k]), *self.window)
        anon, users = self.weeks.add(evs, self.task.event_dirt.get(j, []))
        self.identity_rows(f"P{n:07d}", anon, users, devices)

    def identity_rows(
        self, pid: str, anon: set[str], users: set[str], devices: list[Device]
    ) -> None:
        """Truth rows for the anonymousIds and userIds this person used in valid events."""
        used = [d.anonymous_id for d in devices if d.anonymous_id in anon]
        rows = [["analytics", "anonymous_id", a, pid] for a in used]
        rows += [["analytics", "user_id", u, pid] for u in sorted(users)]
        self.out.rows("identities", rows)

    def result(self) -> ChunkResult:
        """Compress the event weeks and package everything for the writer."""
        members, lines = self.weeks.compress()
        counts = dict(self.counts)
        counts["event_lines"] = lines
        counts["late_event_lines"] = self.weeks.late
        counts["duplicate_event_lines"] = sum(len(v) for v in self.weeks.replays.values())
        counts["malformed_event_lines"] = sum(self.weeks.malformed.values())
        malformed = dict(self.malformed)
        for week, n_bad in self.weeks.malformed.items():
            malformed[f"events:{week}"] = n_bad
        return ChunkResult(self.task.index, self.out.text(), members, counts, malformed, self.cents)


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Generate all rows and events of the persons in ``task``."""
    chunk = _Chunk(task)
    for k, i in enumerate(range(*task.crm_range)):
        chunk.crm_person(k, i)
    if task.index == 0:  # at least one unknown intent email even for tiny runs
        chunk.out.rows("intent", [thirdparty.unknown_intent_row("0x0", chunk.rng, task.window)])
        chunk.counts["unknown_intent"] += 1
    for k, j in enumerate(range(*task.anon_range)):
        chunk.anonymous_visitor(k, j)
    return chunk.result()
