"""Tests for cdp.generate: determinism, file contracts, dirt accounting and ground truth."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from cdp.generate import GenerateConfig, generate

SMALL = {"customers": 300, "events": 5000, "seed": 42}
HEADERS = {
    "crm/customers/customers.csv": "crm_customer_id,first_name,last_name,email,phone,date_of_birth,"
    "address_line1,address_line2,city,postcode,state,country,created_at,updated_at",
    "crm/orders/orders.csv": "order_id,crm_customer_id,ordered_at,total_amount,currency,"
    "item_count,category,status",
    "thirdparty/intent/intent.csv": "email,company_domain,topic,intent_score,observed_at,provider",
    "consent/events/consent.csv": "email,crm_customer_id,purpose,status,recorded_at,source",
    "privacy/erasure_requests/erasure_requests.csv": "request_id,email,crm_customer_id,"
    "requested_at",
}
TRUTH_HEADERS = {
    "identities.csv": "source,id_type,source_record_id,person_id",
    "crm_duplicates.csv": "person_id,crm_customer_id,has_email",
}
CATEGORIES = {"electronics", "fashion", "home", "beauty", "sports", "books", "toys", "grocery"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
AMOUNT_RE = re.compile(r"^\d+\.\d{2}$")


# ---------------------------------------------------------------- helpers (strict parsers)


def run(root: Path, **kw: object) -> dict:
    cfg = {**SMALL, **kw}
    return generate(GenerateConfig(landing_dir=root / "landing", truth_dir=root / "truth", **cfg))


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def parse_ts(value: str) -> dt.datetime | None:
    if not TS_RE.match(value):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}$", value))


def customer_ok(r: dict[str, str]) -> bool:
    return bool(r["crm_customer_id"]) and (not r["date_of_birth"] or parse_date(r["date_of_birth"]))


def order_ok(r: dict[str, str]) -> bool:
    return (
        bool(r["order_id"])
        and bool(r["crm_customer_id"])
        and parse_ts(r["ordered_at"]) is not None
        and bool(AMOUNT_RE.match(r["total_amount"]))
    )


def intent_ok(r: dict[str, str]) -> bool:
    try:
        score = float(r["intent_score"])
    except ValueError:
        return False
    has_key = bool(r["email"].strip() or r["company_domain"])
    return has_key and 0 <= score <= 100 and parse_ts(r["observed_at"]) is not None


def consent_ok(r: dict[str, str]) -> bool:
    return (
        r["status"] in {"granted", "denied", "revoked"}
        and bool(r["email"].strip() or r["crm_customer_id"])
        and parse_ts(r["recorded_at"]) is not None
    )


def event_or_none(line: str) -> dict | None:
    try:
        e = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(e, dict) or not e.get("messageId"):
        return None
    if e.get("type") not in {"page", "track", "identify"}:
        return None
    if parse_ts(e.get("timestamp", "")) is None:
        return None
    if not (e.get("anonymousId") or e.get("userId")):
        return None
    return e


def read_events(landing: Path) -> tuple[list[tuple[str, dict]], dict[str, int], int]:
    """(file, event) for valid lines, malformed count per file, total line count."""
    valid, bad, total = [], {}, 0
    for path in sorted((landing / "analytics/events").glob("*.jsonl.gz")):
        rel = str(path.relative_to(landing))
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                total += 1
                e = event_or_none(line)
                if e is None:
                    bad[rel] = bad.get(rel, 0) + 1
                else:
                    valid.append((rel, e))
    return valid, bad, total


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("gen")
    return root, run(root)


@pytest.fixture(scope="module")
def events(small: tuple[Path, dict]) -> tuple[list[tuple[str, dict]], dict[str, int], int]:
    return read_events(small[0] / "landing")


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes(small: tuple[Path, dict], tmp_path: Path) -> None:
    run(tmp_path)
    assert digest(tmp_path) == digest(small[0])


def test_different_seed_gives_different_data(small: tuple[Path, dict], tmp_path: Path) -> None:
    run(tmp_path, seed=7)
    a, b = digest(tmp_path), digest(small[0])
    assert a["landing/crm/customers/customers.csv"] != b["landing/crm/customers/customers.csv"]
    assert a["truth/identities.csv"] != b["truth/identities.csv"]


def test_worker_count_does_not_change_output(tmp_path: Path) -> None:
    kw = {"customers": 2600, "events": 12_000, "seed": 3}
    one = run(tmp_path / "one", workers=1, **kw)
    two = run(tmp_path / "two", workers=2, **kw)
    assert one == two
    assert digest(tmp_path / "one") == digest(tmp_path / "two")


def test_summary_is_returned_and_written(small: tuple[Path, dict]) -> None:
    root, summary = small
    on_disk = json.loads((root / "truth/summary.json").read_text())
    assert on_disk == summary
    for key in ("seed", "customers", "persons", "anonymous_visitors", "crm_records", "crm_rows",
                "order_rows", "valid_order_total", "events_written", "event_lines",
                "duplicate_event_lines", "malformed", "end_date", "days"):  # fmt: skip
        assert key in summary
    assert summary["persons"] == summary["customers"] + summary["anonymous_visitors"]
    assert summary["end_date"] == "2026-11-20" and summary["days"] == 90


def test_bad_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers"):
        run(tmp_path, customers=0)


# ---------------------------------------------------------------- file contracts


def test_every_file_has_its_header(small: tuple[Path, dict]) -> None:
    root, _ = small
    for rel, header in HEADERS.items():
        assert (root / "landing" / rel).read_text().splitlines()[0] == header, rel
    for rel, header in TRUTH_HEADERS.items():
        assert (root / "truth" / rel).read_text().splitlines()[0] == header, rel


def test_event_files_are_weekly_and_named_by_monday(small: tuple[Path, dict]) -> None:
    root, summary = small
    files = sorted((root / "landing/analytics/events").glob("events-*.jsonl.gz"))
    assert len(files) >= 13
    for f in files:
        day = dt.date.fromisoformat(f.name[len("events-") : -len(".jsonl.gz")])
        assert day.weekday() == 0
    assert [str(f.relative_to(root / "landing")) for f in files] == summary["event_files"]


def test_customers_rows_are_realistic(small: tuple[Path, dict]) -> None:
    root, summary = small
    crm = [r for r in rows(root / "landing/crm/customers/customers.csv") if customer_ok(r)]
    assert len(crm) + summary["malformed"]["crm/customers/customers.csv"] == summary["crm_rows"]
    assert all(re.match(r"^C\d{7}$", r["crm_customer_id"]) for r in crm)
    emails = [r["email"] for r in crm if r["email"]]
    assert any(e != e.lower() for e in emails)  # mixed case
    assert any(e != e.strip() for e in emails)  # surrounding whitespace
    phones = [r["phone"] for r in crm if r["phone"]]
    assert any(p.startswith("+1 ") for p in phones) and any(p.startswith("(") for p in phones)
    assert any(re.match(r"^\d{10}$", p) for p in phones)
    assert sum(not r["phone"] for r in crm) > 0.03 * len(crm)
    assert sum(not r["date_of_birth"] for r in crm) > 0


def test_orders_reference_valid_customers_and_use_the_enums(small: tuple[Path, dict]) -> None:
    root, _ = small
    ids = {r["crm_customer_id"] for r in rows(root / "landing/crm/customers/customers.csv")}
    orders = [r for r in rows(root / "landing/crm/orders/orders.csv") if order_ok(r)]
    assert orders
    assert all(r["crm_customer_id"] in ids for r in orders)
    assert {r["currency"] for r in orders} == {"USD"}
    assert {r["category"] for r in orders} <= CATEGORIES
    statuses = [r["status"] for r in orders]
    assert set(statuses) <= {"completed", "refunded", "cancelled"}
    assert statuses.count("completed") > 0.8 * len(statuses)
    assert len({r["order_id"] for r in orders}) == len(orders)


def test_valid_order_total_is_the_exact_sum(small: tuple[Path, dict]) -> None:
    root, summary = small
    total = sum(
        Decimal(r["total_amount"])
        for r in rows(root / "landing/crm/orders/orders.csv")
        if order_ok(r)
    )
    assert summary["valid_order_total"] == f"{total:.2f}"


def test_malformed_counts_match_a_strict_parser(small: tuple[Path, dict], events) -> None:
    root, summary = small
    landing = root / "landing"
    checks = {
        "crm/customers/customers.csv": customer_ok,
        "crm/orders/orders.csv": order_ok,
        "thirdparty/intent/intent.csv": intent_ok,
        "consent/events/consent.csv": consent_ok,
    }
    found = {rel: sum(not ok(r) for r in rows(landing / rel)) for rel, ok in checks.items()}
    _, bad_events, _ = events
    found.update(bad_events)
    found = {k: v for k, v in found.items() if v}
    assert found == summary["malformed"]
    assert found["crm/customers/customers.csv"] >= 2
    assert found["crm/orders/orders.csv"] >= 2
    assert found["thirdparty/intent/intent.csv"] >= 1
    assert found["consent/events/consent.csv"] >= 1
    assert sum(bad_events.values()) >= 3
    assert len(bad_events) >= 2  # spread over files


def test_malformed_crm_ids_matter_to_nobody(small: tuple[Path, dict]) -> None:
    root, _ = small
    landing = root / "landing"
    crm = rows(landing / "crm/customers/customers.csv")
    bad = {r["crm_customer_id"] for r in crm if not customer_ok(r)} - {""}
    good = {r["crm_customer_id"] for r in crm if customer_ok(r)}
    assert not bad & good
    truth = {r["source_record_id"] for r in rows(root / "truth/identities.csv")}
    assert not bad & truth
    used = {r["crm_customer_id"] for r in rows(landing / "crm/orders/orders.csv")}
    used |= {r["crm_customer_id"] for r in rows(landing / "consent/events/consent.csv")}
    assert not bad & used


def test_event_counts_add_up(small: tuple[Path, dict], events) -> None:
    _, summary = small
    valid, bad, total = events
    assert total == summary["event_lines"]
    assert len(valid) == summary["events_written"] + summary["duplicate_event_lines"]
    assert len({e["messageId"] for _, e in valid}) == summary["events_written"]
    assert abs(summary["events_written"] - SMALL["events"]) <= 0.05 * SMALL["events"]
    assert summary["duplicate_event_lines"] >= 1
    assert sum(bad.values()) == summary["malformed_event_lines"]


def test_duplicate_event_lines_are_exact_replays(events) -> None:
    valid, _, _ = events
    by_id: dict[str, list[dict]] = defaultdict(list)
    for _, e in valid:
        by_id[e["messageId"]].append(e)
    replays = [v for v in by_id.values() if len(v) > 1]
    assert replays
    assert all(all(x == v[0] for x in v) for v in replays)


def test_events_follow_the_segment_spec(events) -> None:
    valid, _, _ = events
    names = set()
    for _, e in valid:
        assert {"ip", "userAgent", "locale", "page"} <= set(e["context"])
        if e["type"] == "track":
            names.add(e["event"])
            assert isinstance(e["properties"], dict)
            if "category" in e["properties"]:
                assert e["properties"]["category"] in CATEGORIES
        elif e["type"] == "page":
            assert {"url", "path", "title", "referrer"} <= set(e["properties"]) and e["name"]
        else:
            assert {"email", "phone", "first_name", "last_name"} <= set(e["traits"])
    assert names == {
        "product_viewed",
        "product_searched",
        "product_added_to_cart",
        "checkout_started",
        "order_completed",
    }
    assert any("campaign" in e["context"] for _, e in valid)


def test_late_events_sit_in_a_later_weeks_file(events, small: tuple[Path, dict]) -> None:
    valid, _, _ = events
    late = 0
    for rel, e in valid:
        monday = dt.date.fromisoformat(rel.split("events-")[1][:10])
        day = dt.date.fromisoformat(e["timestamp"][:10])
        assert day < monday + dt.timedelta(days=7)
        late += day < monday
    assert late == small[1]["late_event_lines"] >= 1


def test_events_come_in_sessions(events) -> None:
    valid, _, _ = events
    times: dict[str, list[dt.datetime]] = defaultdict(list)
    for _, e in valid:
        times[e["anonymousId"]].append(parse_ts(e["timestamp"]))
    multi_session, in_session = 0, []
    for ts in times.values():
        ts = sorted(set(ts))
        gaps = [(b - a).total_seconds() for a, b in zip(ts, ts[1:], strict=False)]
        in_session += [g for g in gaps if g < 1800]
        multi_session += any(g >= 1800 for g in gaps) and any(g < 1800 for g in gaps)
    assert multi_session > 0.3 * len(times)  # several sessions, each with several events
    in_session.sort()
    median = in_session[len(in_session) // 2]
    assert 2 <= median <= 600  # seconds to minutes between clicks


def test_funnels_and_web_orders_match_crm(small: tuple[Path, dict], events) -> None:
    root, _ = small
    valid, _, _ = events
    orders = {r["order_id"]: r for r in rows(root / "landing/crm/orders/orders.csv")}
    completed = [e for _, e in valid if e.get("event") == "order_completed"]
    carts = [e for _, e in valid if e.get("event") == "product_added_to_cart"]
    assert completed and len(carts) > len(completed)  # some carts are abandoned
    for e in completed:
        order = orders[e["properties"]["order_id"]]
        assert order["total_amount"] == f"{e['properties']['revenue']:.2f}"
        assert e["userId"]


def test_anonymous_then_identified_journeys(events) -> None:
    valid, _, _ = events
    by_anon: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for _, e in valid:
        by_anon[e["anonymousId"]].append((e["timestamp"], e.get("userId")))
    journeys = 0
    for seq in by_anon.values():
        seq.sort()
        first_user = next((i for i, (_, u) in enumerate(seq) if u), None)
        if first_user:  # at least one anonymous-only event before the first login
            journeys += 1
            assert all(u for _, u in seq[first_user:])  # stays logged in on that device
    assert journeys > 10
    multi_session_journeys = 0
    for seq in by_anon.values():
        first_user = next((i for i, (_, u) in enumerate(seq) if u), None)
        if first_user and first_user > 1:
            a = parse_ts(seq[0][0])
            b = parse_ts(seq[first_user][0])
            multi_session_journeys += (b - a).total_seconds() >= 1800
    assert multi_session_journeys > 0


def test_user_ids_are_primary_crm_ids(small: tuple[Path, dict], events) -> None:
    root, _ = small
    valid, _, _ = events
    truth = {
        (r["id_type"], r["source_record_id"]): r["person_id"]
        for r in rows(root / "truth/identities.csv")
    }
    users_per_person: dict[str, set[str]] = defaultdict(set)
    for _, e in valid:
        if e.get("userId"):
            assert ("crm_customer_id", e["userId"]) in truth
            users_per_person[truth[("crm_customer_id", e["userId"])]].add(e["userId"])
    assert all(len(u) == 1 for u in users_per_person.values())
    # the primary record is the person's oldest one; a duplicate's id never logs in
    created: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in rows(root / "landing/crm/customers/customers.csv"):
        if customer_ok(r):
            created[truth[("crm_customer_id", r["crm_customer_id"])]].append(
                (r["created_at"], r["crm_customer_id"])
            )
    for pid, users in users_per_person.items():
        assert users == {min(created[pid])[1]}
    identifies = [e for _, e in valid if e["type"] == "identify"]
    assert any(e.get("userId") and e["traits"]["email"] != e["traits"]["email"].lower()
               for e in identifies)  # fmt: skip


def test_anonymous_visitors_and_signups(small: tuple[Path, dict], events) -> None:
    root, summary = small
    valid, _, _ = events
    crm_emails = {
        r["email"].strip().lower() for r in rows(root / "landing/crm/customers/customers.csv")
    }
    truth = {r["source_record_id"]: r["person_id"] for r in rows(root / "truth/identities.csv")}
    crm_persons = {
        r["person_id"] for r in rows(root / "truth/identities.csv") if r["source"] == "crm"
    }
    anon_persons = {truth[e["anonymousId"]] for _, e in valid} - crm_persons
    share = len(anon_persons) / len({truth[e["anonymousId"]] for _, e in valid})
    assert 0.3 < share < 0.5
    signups = [e for _, e in valid if e["type"] == "identify" and not e.get("userId")]
    assert signups
    for e in signups:
        assert e["traits"]["email"].lower() not in crm_emails
        assert truth[e["anonymousId"]] not in crm_persons
    for _, e in valid:
        if truth[e["anonymousId"]] in anon_persons:
            assert not e.get("userId")


# ---------------------------------------------------------------- ground truth


def test_truth_covers_every_valid_id(small: tuple[Path, dict], events) -> None:
    root, _ = small
    landing = root / "landing"
    identities = rows(root / "truth/identities.csv")
    keys = {(r["source"], r["id_type"], r["source_record_id"]) for r in identities}
    assert len(keys) == len(identities)
    assert all(re.match(r"^P\d{7}$", r["person_id"]) for r in identities)
    crm_ids = {
        r["crm_customer_id"]
        for r in rows(landing / "crm/customers/customers.csv")
        if customer_ok(r)
    }
    crm_ids |= {
        r["crm_customer_id"] for r in rows(landing / "crm/orders/orders.csv") if order_ok(r)
    }
    crm_ids |= {
        r["crm_customer_id"]
        for r in rows(landing / "consent/events/consent.csv")
        if consent_ok(r) and r["crm_customer_id"]
    }
    truth_crm = {k[2] for k in keys if k[0] == "crm"}
    assert crm_ids == truth_crm
    valid, _, _ = events
    anon = {e["anonymousId"] for _, e in valid}
    users = {e["userId"] for _, e in valid if e.get("userId")}
    assert anon == {k[2] for k in keys if k[1] == "anonymous_id"}
    assert users == {k[2] for k in keys if k[1] == "user_id"}


def test_crm_duplicates_share_a_mailbox_in_other_case(small: tuple[Path, dict]) -> None:
    root, summary = small
    crm = rows(root / "landing/crm/customers/customers.csv")
    email_of = {r["crm_customer_id"]: r["email"] for r in crm if customer_ok(r)}
    dups = rows(root / "truth/crm_duplicates.csv")
    assert len(dups) == summary["crm_records"] == len(email_of)
    by_person: dict[str, list[str]] = defaultdict(list)
    for r in dups:
        by_person[r["person_id"]].append(r["crm_customer_id"])
        assert (r["has_email"] == "true") == bool(email_of[r["crm_customer_id"]])
    pairs = [ids for ids in by_person.values() if len(ids) == 2]
    assert len(pairs) == summary["crm_duplicates"] > 0.05 * summary["customers"]
    varied = missing = 0
    for a, b in pairs:
        ea, eb = email_of[a], email_of[b]
        if ea and eb:
            assert ea.strip().lower() == eb.strip().lower()
            varied += ea != eb
        missing += not eb
    assert varied > 0 and missing > 0
    # an email-only rule: one profile per normalized email, plus one per record without email
    with_email = [r for r in dups if r["has_email"] == "true"]
    norm = {email_of[r["crm_customer_id"]].strip().lower() for r in with_email}
    no_email = sum(r["has_email"] == "false" for r in dups)
    expected_persons = len({r["person_id"] for r in with_email})
    assert len(norm) == expected_persons
    assert len(norm) + no_email > summary["customers"]


def test_crm_history_rows_repeat_an_id_with_a_later_update(small: tuple[Path, dict]) -> None:
    root, summary = small
    seen: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows(root / "landing/crm/customers/customers.csv"):
        if customer_ok(r):
            seen[r["crm_customer_id"]].append(r)
    history = [v for v in seen.values() if len(v) > 1]
    assert len(history) == summary["crm_history_rows"] > 0
    for old, new in history:
        assert new["updated_at"] > old["updated_at"]
        assert (old["address_line1"], old["phone"]) != (new["address_line1"], new["phone"])


def test_thirdparty_consent_and_erasure(small: tuple[Path, dict]) -> None:
    root, _ = small
    landing = root / "landing"
    crm_emails = {
        r["email"].strip().lower() for r in rows(landing / "crm/customers/customers.csv")
    } - {""}
    intent = [r for r in rows(landing / "thirdparty/intent/intent.csv") if intent_ok(r)]
    known = [r for r in intent if r["email"].strip().lower() in crm_emails]
    unknown = [r for r in intent if r["email"] and r["email"].strip().lower() not in crm_emails]
    assert known and unknown
    assert {r["provider"] for r in intent} <= {"bombora", "6sense"}
    assert all(re.match(r"^\d{1,3}\.\d$", r["intent_score"]) for r in intent)

    consent = [r for r in rows(landing / "consent/events/consent.csv") if consent_ok(r)]
    assert {r["purpose"] for r in consent} == {"email_marketing", "personalization", "advertising"}
    assert {r["source"] for r in consent} <= {"web_banner", "crm", "preference_center"}
    assert any(r["email"] and r["crm_customer_id"] for r in consent)
    # revoked always follows an earlier granted for the same purpose and person
    email_to_id = {}
    for r in rows(landing / "crm/customers/customers.csv"):
        if r["email"]:
            email_to_id[r["email"].strip().lower()] = r["crm_customer_id"]
    person = {r["source_record_id"]: r["person_id"] for r in rows(root / "truth/identities.csv")}

    def who(r: dict[str, str]) -> str:
        email = r["email"].strip().lower()
        cid = r["crm_customer_id"] or email_to_id.get(email)
        return person[cid] if cid else email

    history: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in consent:
        history[(who(r), r["purpose"])].append((r["recorded_at"], r["status"]))
    revoked = 0
    for seq in history.values():
        seq.sort()
        for i, (_, status) in enumerate(seq):
            if status == "revoked":
                revoked += 1
                assert any(s == "granted" for _, s in seq[:i])
    assert revoked > 0

    erasures = rows(landing / "privacy/erasure_requests/erasure_requests.csv")
    assert len(erasures) >= 1
    assert all(r["request_id"] and (r["email"] or r["crm_customer_id"]) for r in erasures)
    assert all(parse_ts(r["requested_at"]) for r in erasures)


def test_timestamps_are_inside_the_window(small: tuple[Path, dict], events) -> None:
    root, _ = small
    start = dt.datetime(2026, 8, 23, tzinfo=dt.UTC)
    end = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    valid, _, _ = events
    for _, e in valid:
        assert start <= parse_ts(e["timestamp"]) < end
    for r in rows(root / "landing/crm/orders/orders.csv"):
        if order_ok(r):
            assert start <= parse_ts(r["ordered_at"]) < end
