"""Pull records from CRM-style REST APIs into ``raw.*``, one page per batch, resuming safely.

A connector is a YAML file (see ``docs/rest-connector.md``) naming an endpoint, how it pages, and
the landing contract its records map onto. Each page becomes one batch loaded by
``ingestion.batch.load_batch``; the connector's checkpoint (the largest ``cursor_field`` value
loaded so far) is advanced in the same transaction as the page's rows, so a crash at any point
leaves the warehouse and the checkpoint consistent and the next run resumes after the last
committed page. Transient failures (429, 5xx, dropped connections) are retried with exponential
backoff and jitter; anything else fails at once with the response excerpt.
"""

from __future__ import annotations

import dataclasses
import email.utils
import http.client
import json
import logging
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import yaml

from cdp.contracts import CONTRACTS
from cdp.settings import Settings
from cdp.warehouse import connect
from cdp.yaml_strict import load_strict
from ingestion.batch import BatchResult, load_batch, records_batch

log = logging.getLogger(__name__)

#: The checkpoint table: one row per connector, the largest cursor value loaded so far.
CHECKPOINT_DDL = """
    create table if not exists audit.connector_checkpoints (
        connector VARCHAR PRIMARY KEY,
        cursor_value VARCHAR,
        updated_at TIMESTAMP
    )
"""

#: First backoff delay; attempt n waits ``BACKOFF_BASE_SECONDS * 2**n`` plus up to 100 % jitter.
BACKOFF_BASE_SECONDS = 1.0
#: Longest computed backoff delay (a server's ``Retry-After`` is honoured as given).
BACKOFF_MAX_SECONDS = 60.0
#: Characters of a response body quoted in error messages.
BODY_EXCERPT_CHARS = 300

#: Network failures worth retrying (URLError, timeouts and resets are all OSErrors).
_TRANSIENT_ERRORS = (OSError, http.client.HTTPException)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Sleep = Callable[[float], None]


class ConnectorError(RuntimeError):
    """A REST connector cannot run: bad config, missing secret, or an API that keeps failing."""


@dataclass(frozen=True)
class Pagination:
    """How the API pages: by an opaque cursor in the response, or by page number."""

    type: str  # cursor | page
    cursor_param: str = "cursor"
    next_field: str = "next_cursor"
    page_param: str = "page"
    size_param: str | None = None
    size: int | None = None
    first_page: int = 1


@dataclass(frozen=True)
class Incremental:
    """Which record field is the checkpoint, and which query parameter sends it back."""

    cursor_field: str
    param: str


@dataclass(frozen=True)
class RestSourceConfig:
    """One REST connector, as read from its YAML file (``${VAR}`` not yet expanded)."""

    name: str
    source: str
    url: str
    pagination: Pagination
    records_field: str = "data"
    incremental: Incremental | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    max_retries: int = 5
    path: Path | None = None  # the YAML file it came from, for error messages


# --- configuration -------------------------------------------------------------------------

_TOP_KEYS = {
    "name",
    "source",
    "url",
    "pagination",
    "records_field",
    "incremental",
    "headers",
    "params",
    "timeout_seconds",
    "max_retries",
}
_PAGINATION_KEYS = {
    "cursor": {"type", "cursor_param", "next_field", "size_param", "size"},
    "page": {"type", "page_param", "size_param", "size", "first_page"},
}
_INCREMENTAL_KEYS = {"cursor_field", "param"}


def _check_keys(where: str, section: str, mapping: dict, allowed: set[str]) -> None:
    """Fail on the first key of ``mapping`` that is not in ``allowed``."""
    for key in mapping:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConnectorError(f"{where}: unknown key '{section}{key}' (known keys: {known})")


def _text(where: str, key: str, value: object, *, required: bool = True) -> str | None:
    """A non-empty string setting, or None when optional and absent."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConnectorError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _number(where: str, key: str, value: object, *, minimum: float, integer: bool) -> float:
    """A numeric setting at least ``minimum`` (an integer when ``integer``)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        what = "an integer" if integer else "a number"
        raise ConnectorError(f"{where}: '{key}' must be {what} >= {minimum:g}, got {value!r}")
    return value


def _mapping(where: str, key: str, value: object) -> dict:
    """A mapping setting (``None`` = empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConnectorError(f"{where}: '{key}' must be a mapping, got {type(value).__name__}")
    return value


def _string_map(where: str, key: str, value: object) -> dict[str, str]:
    """A mapping of names to scalar values, as strings (headers, query parameters)."""
    result = {}
    for name, item in _mapping(where, key, value).items():
        if isinstance(item, (dict, list)) or item is None:
            raise ConnectorError(f"{where}: '{key}.{name}' must be a single value, got {item!r}")
        result[str(name)] = str(item)
    return result


def _pagination(where: str, value: object) -> Pagination:
    """Validate the ``pagination`` section."""
    if value is None:
        raise ConnectorError(f"{where}: missing required key 'pagination'")
    section = _mapping(where, "pagination", value)
    kind = section.get("type")
    if kind not in _PAGINATION_KEYS:
        raise ConnectorError(f"{where}: 'pagination.type' must be 'cursor' or 'page', got {kind!r}")
    _check_keys(where, "pagination.", section, _PAGINATION_KEYS[kind])
    options = {k: v for k, v in section.items() if k != "type"}
    for key in ("cursor_param", "next_field", "page_param", "size_param"):
        if key in options:
            _text(where, f"pagination.{key}", options[key])
    if "size" in options:
        _number(where, "pagination.size", options["size"], minimum=1, integer=True)
    if "first_page" in options:
        _number(where, "pagination.first_page", options["first_page"], minimum=0, integer=True)
    if ("size" in options) != ("size_param" in options):
        raise ConnectorError(f"{where}: 'pagination.size' and 'pagination.size_param' go together")
    if kind == "page" and "size" not in options:
        raise ConnectorError(
            f"{where}: page pagination needs 'pagination.size' and 'pagination.size_param' "
            "(a short page marks the last one)"
        )
    return Pagination(type=kind, **options)


def _incremental(where: str, value: object) -> Incremental | None:
    """Validate the optional ``incremental`` section."""
    if value is None:
        return None
    section = _mapping(where, "incremental", value)
    _check_keys(where, "incremental.", section, _INCREMENTAL_KEYS)
    for key in sorted(_INCREMENTAL_KEYS):
        if key not in section:
            raise ConnectorError(f"{where}: missing required key 'incremental.{key}'")
        _text(where, f"incremental.{key}", section[key])
    return Incremental(cursor_field=section["cursor_field"], param=section["param"])


def parse_rest_config(
    raw: object, where: str = "<config>", path: Path | None = None
) -> RestSourceConfig:
    """Validate a parsed YAML document into a ``RestSourceConfig``."""
    if not isinstance(raw, dict):
        raise ConnectorError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    _check_keys(where, "", raw, _TOP_KEYS)
    for key in ("name", "source", "url"):
        if key not in raw:
            raise ConnectorError(f"{where}: missing required key '{key}'")
    name = _text(where, "name", raw["name"])
    if not _NAME.match(name):
        raise ConnectorError(
            f"{where}: 'name' must be lowercase letters, digits and '_', got {name!r}"
        )
    source = _text(where, "source", raw["source"])
    if source not in CONTRACTS:
        known = ", ".join(sorted(CONTRACTS))
        raise ConnectorError(f"{where}: unknown contract 'source: {source}' (known: {known})")
    url = _text(where, "url", raw["url"])
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConnectorError(f"{where}: 'url' must start with http:// or https://, got {url!r}")
    return RestSourceConfig(
        name=name,
        source=source,
        url=url,
        pagination=_pagination(where, raw.get("pagination")),
        records_field=_text(where, "records_field", raw.get("records_field", "data")),
        incremental=_incremental(where, raw.get("incremental")),
        headers=_string_map(where, "headers", raw.get("headers")),
        params=_string_map(where, "params", raw.get("params")),
        timeout_seconds=float(
            _number(
                where,
                "timeout_seconds",
                raw.get("timeout_seconds", 30),
                minimum=0.001,
                integer=False,
            )
        ),
        max_retries=int(
            _number(where, "max_retries", raw.get("max_retries", 5), minimum=0, integer=True)
        ),
        path=path,
    )


def load_rest_config(path: Path | str) -> RestSourceConfig:
    """Read and validate one connector YAML file."""
    path = Path(path)
    try:
        raw = load_strict(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectorError(f"{path}: cannot read connector config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConnectorError(f"{path}: not valid YAML: {exc}") from None
    return parse_rest_config(raw, str(path), path)


def _where(config: RestSourceConfig) -> str:
    """How to name a connector in messages: its file, or its name."""
    return str(config.path) if config.path else f"connector {config.name!r}"


def expand_env(config: RestSourceConfig, env: Mapping[str, str]) -> RestSourceConfig:
    """Replace ``${VAR}`` in url, headers and params with values from ``env``."""

    def expand(key: str, text: str) -> str:
        def value(match: re.Match) -> str:
            name = match.group(1)
            if not env.get(name):
                raise ConnectorError(
                    f"{_where(config)}: '{key}' uses ${{{name}}}, but the environment variable "
                    f"{name} is not set (or is empty)"
                )
            return env[name]

        return _ENV_VAR.sub(value, text)

    return dataclasses.replace(
        config,
        url=expand("url", config.url),
        headers={k: expand(f"headers.{k}", v) for k, v in config.headers.items()},
        params={k: expand(f"params.{k}", v) for k, v in config.params.items()},
    )


# --- HTTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _excerpt(body: bytes) -> str:
    """The start of a response body, readable in one line."""
    text = body.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text if len(text) <= BODY_EXCERPT_CHARS else text[:BODY_EXCERPT_CHARS] + "…"


def _send(url: str, headers: Mapping[str, str], timeout: float) -> _Response:
    """One GET; HTTP error statuses are returned, network failures raised."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _Response(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return _Response(exc.code, dict(exc.headers or {}), exc.read())


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter for retry number ``attempt`` (0-based)."""
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    return delay + (rng or random).uniform(0, delay)


def _is_retryable(status: int) -> bool:
    """429 Too Many Requests and every 5xx are worth another try; other statuses are not."""
    return status == 429 or 500 <= status < 600


def get_json(
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    max_retries: int,
    sleep: Sleep = time.sleep,
) -> object:
    """GET ``url`` and parse its JSON, retrying 429, 5xx and connection errors with backoff."""
    last = "no response"
    for attempt in range(max_retries + 1):
        wait = None
        try:
            response = _send(url, headers, timeout)
        except _TRANSIENT_ERRORS as exc:
            last = f"connection error: {getattr(exc, 'reason', None) or exc!r}"
        else:
            if 200 <= response.status < 300:
                return _parse_json(url, response)
            last = f"status {response.status}: {_excerpt(response.body)}"
            if not _is_retryable(response.status):
                raise ConnectorError(f"GET {url} failed with {last}")
            if response.status == 429:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
        if attempt == max_retries:
            break
        wait = backoff_seconds(attempt) if wait is None else wait
        log.warning("GET %s: %s; retry %d/%d in %.1fs", url, last, attempt + 1, max_retries, wait)
        sleep(wait)
    raise ConnectorError(f"GET {url} failed after {max_retries + 1} attempts; last {last}")


def _parse_json(url: str, response: _Response) -> object:
    """The JSON document of a successful response."""
    try:
        return json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConnectorError(
            f"GET {url} returned status {response.status} but not JSON ({exc}): "
            f"{_excerpt(response.body)}"
        ) from None


# --- pagination ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One response page: its position, the URL that fetched it, and its records."""

    number: int  # 1-based within this run
    url: str
    records: list


def _dig(document: object, dotted: str) -> object:
    """``document["a"]["b"]`` for ``"a.b"``; None where a level is missing."""
    for part in dotted.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


def page_url(base: str, params: Mapping[str, str]) -> str:
    """``base`` with ``params`` added to (or replacing) its query string."""
    parts = urllib.parse.urlsplit(base)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _records(config: RestSourceConfig, url: str, document: object) -> list:
    """The list of records in a response, or a clear error naming the field."""
    records = _dig(document, config.records_field)
    if not isinstance(records, list):
        found = "nothing" if records is None else type(records).__name__
        raise ConnectorError(
            f"{_where(config)}: GET {url}: expected a list of records at "
            f"'records_field: {config.records_field}', found {found}"
        )
    return records


def fetch_pages(
    config: RestSourceConfig, since: str | None, *, sleep: Sleep = time.sleep
) -> Iterator[Page]:
    """Yield the pages of one run, lazily (a page is fetched after the previous was loaded)."""
    paging = config.pagination
    params = dict(config.params)
    if config.incremental and since is not None:
        params[config.incremental.param] = since
    if paging.size_param:
        params[paging.size_param] = str(paging.size)
    cursor: str | None = None
    seen_cursors: set[str] = set()
    for number in range(1, 1_000_000_000):
        if paging.type == "page":
            params[paging.page_param] = str(paging.first_page + number - 1)
        elif cursor is not None:
            params[paging.cursor_param] = cursor
        url = page_url(config.url, params)
        document = get_json(
            url,
            config.headers,
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
            sleep=sleep,
        )
        records = _records(config, url, document)
        yield Page(number, url, records)
        if paging.type == "page":
            if not records or len(records) < paging.size:
                return
            continue
        next_cursor = _dig(document, paging.next_field)
        if next_cursor in (None, ""):
            return
        cursor = str(next_cursor)
        if cursor in seen_cursors:
            raise ConnectorError(
                f"{_where(config)}: GET {url} returned cursor {cursor!r} a second time; "
                "stopping instead of looping forever"
            )
        seen_cursors.add(cursor)


# --- checkpoints ---------------------------------------------------------------------------


def _order_key(value: str) -> tuple:
    """Sort key for cursor values: numbers, then ISO timestamps, then plain text."""
    try:
        return (0, float(value), value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return (2, value, value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return (1, parsed, value)


def max_cursor(values: list[str | None]) -> str | None:
    """The largest of the cursor values, ignoring missing ones."""
    present = [v for v in values if v not in (None, "")]
    return max(present, key=_order_key) if present else None


def _page_cursor(config: RestSourceConfig, records: list) -> str | None:
    """The largest ``cursor_field`` value among a page's records."""
    if config.incremental is None:
        return None
    name = config.incremental.cursor_field
    values = [r.get(name) for r in records if isinstance(r, dict)]
    return max_cursor([None if v is None else str(v) for v in values])


def read_checkpoint(con: duckdb.DuckDBPyConnection, connector: str) -> str | None:
    """The connector's committed cursor value, or None before its first load."""
    con.execute(CHECKPOINT_DDL)
    row = con.execute(
        "select cursor_value from audit.connector_checkpoints where connector = ?", [connector]
    ).fetchone()
    return row[0] if row else None


def save_checkpoint(con: duckdb.DuckDBPyConnection, connector: str, cursor_value: str) -> None:
    """Record the connector's cursor value (in the caller's transaction, if any)."""
    con.execute(
        """
        insert into audit.connector_checkpoints values (?, ?, ?)
        on conflict (connector) do update
        set cursor_value = excluded.cursor_value, updated_at = excluded.updated_at
        """,
        [connector, cursor_value, datetime.now(UTC).replace(tzinfo=None)],
    )


# --- running -------------------------------------------------------------------------------


def source_file(config: RestSourceConfig, since: str | None, page: Page) -> str:
    """The batch's ``source_file``: connector, the checkpoint it started from, page number."""
    start = f"{config.incremental.param}={since}" if config.incremental and since else "full"
    return f"api:{config.name}/{start}/page={page.number}"


def ingest_rest(
    settings: Settings,
    config: RestSourceConfig,
    *,
    sleep: Sleep = time.sleep,
    env: Mapping[str, str] | None = None,
) -> list[BatchResult]:
    """Load every new record of one REST connector, one batch per page; return the batches."""
    config = expand_env(config, os.environ if env is None else env)
    contract = CONTRACTS[config.source]
    results: list[BatchResult] = []
    with connect(settings) as con:
        since = read_checkpoint(con, config.name)
        checkpoint = since
        log.info("%s: starting from checkpoint %r", config.name, since)
        for page in fetch_pages(config, since, sleep=sleep):
            if not page.records:
                continue
            page_max = _page_cursor(config, page.records)
            if checkpoint is not None and page_max is not None:
                _warn_if_unordered(config, page, checkpoint, since)
            new_checkpoint = max_cursor([checkpoint, page_max])
            advance = _checkpoint_writer(config.name, new_checkpoint)
            batch = records_batch(source_file(config, since, page), page.records)
            result = load_batch(con, contract, batch, settings, in_transaction=advance)
            if result.skipped and new_checkpoint != checkpoint:
                advance(con)  # loaded by an earlier run; make sure the checkpoint reflects it
            checkpoint = new_checkpoint
            log.info("%s page %d: %s", config.name, page.number, result)
            results.append(result)
    return results


def _checkpoint_writer(
    connector: str, value: str | None
) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """A callback that saves ``value`` as the connector's checkpoint (if there is one)."""

    def write(con: duckdb.DuckDBPyConnection) -> None:
        if value is not None:
            save_checkpoint(con, connector, value)

    return write


def _warn_if_unordered(
    config: RestSourceConfig, page: Page, checkpoint: str, since: str | None
) -> None:
    """Warn when a page holds records older than what earlier pages of this run checkpointed."""
    name = config.incremental.cursor_field
    values = [str(r[name]) for r in page.records if isinstance(r, dict) and r.get(name)]
    oldest = min(values, key=_order_key, default=None)
    if oldest is not None and checkpoint != since and _order_key(oldest) < _order_key(checkpoint):
        log.warning(
            "%s: page %d has %s=%s, older than the checkpoint %s already committed this run; "
            "the API does not return records in ascending %s order, so a crash mid-run "
            "could skip records (sort the API by %s, e.g. with 'params')",
            config.name,
            page.number,
            name,
            oldest,
            checkpoint,
            name,
            name,
        )
