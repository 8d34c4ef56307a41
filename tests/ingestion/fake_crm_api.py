"""A tiny CRM REST API for tests: a real HTTP server on 127.0.0.1 with scriptable faults.

Endpoints (both filter by ``updated_since``, inclusive, and return records in ascending
``updated_at`` order, ties broken by id — the order incremental APIs promise):

- ``GET /customers?cursor=&limit=&updated_since=`` → ``{"data": [...], "next_cursor": "..."|null}``
- ``GET /customers/pages?page=&per_page=&updated_since=`` → ``{"results": [...], "page": n}``

``fail_next`` queues responses (a status with optional ``Retry-After``, or a dropped connection)
served before normal ones; every request is recorded in ``requests``.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Fault:
    """A scripted response: an HTTP status (with optional Retry-After), or ``drop`` the socket."""

    status: int | None  # None = close the connection without answering
    retry_after: str | None = None
    body: str = '{"error": "scripted fault"}'


def _instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class FakeCrmApi:
    """In-memory customers behind a paginated, incremental, fault-injectable HTTP API."""

    customers: list[dict] = field(default_factory=list)
    page_size: int = 2
    token: str | None = None  # when set, requests need ``Authorization: Bearer <token>``
    ordered: bool = True  # False: serve in insertion order, like an API without a sort
    requests: list[Request] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    # a fault served when the N-th page request (1-based, counting only served pages) arrives
    fail_on_page: dict[int, Fault] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _pages_served: int = 0

    # --- scripting ---------------------------------------------------------------------------

    def fail_next(self, status: int | None, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (None = drop the connection)."""
        with self._lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(times))

    def upsert(self, record: dict) -> None:
        """Add a customer or replace the one with the same ``crm_customer_id``."""
        with self._lock:
            key = record.get("crm_customer_id")
            self.customers = [c for c in self.customers if c.get("crm_customer_id") != key]
            self.customers.append(record)

    def query_values(self, name: str) -> list[str | None]:
        """The value of query parameter ``name`` in every request so far, in order."""
        return [r.query.get(name) for r in self.requests]

    # --- serving -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeCrmApi:
        """Serve on a free port of 127.0.0.1 from a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        serve.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Fault | dict:
        """The answer to one request: a scripted fault, an error, or a page of customers."""
        with self._lock:
            self.requests.append(Request(path, query, headers))
            if self.faults:
                return self.faults.popleft()
            if self.token and headers.get("Authorization") != f"Bearer {self.token}":
                return Fault(401, body='{"error": "invalid token"}')
            if path not in ("/customers", "/customers/pages"):
                return Fault(404, body=f'{{"error": "no route {path}"}}')
            fault = self.fail_on_page.pop(self._pages_served + 1, None)
            if fault is not None:
                return fault
            self._pages_served += 1
            selected = self._selected(query.get("updated_since"))
            if path == "/customers":
                return self._cursor_page(selected, query)
            return self._numbered_page(selected, query)

    def _selected(self, since: str | None) -> list[dict]:
        rows = [
            c for c in self.customers if not since or _instant(c["updated_at"]) >= _instant(since)
        ]
        if not self.ordered:
            return rows
        return sorted(
            rows, key=lambda c: (_instant(c["updated_at"]), str(c.get("crm_customer_id")))
        )

    def _cursor_page(self, rows: list[dict], query: dict[str, str]) -> dict:
        start = int(query.get("cursor", "c0").removeprefix("c"))
        limit = int(query.get("limit", self.page_size))
        end = start + limit
        return {"data": rows[start:end], "next_cursor": f"c{end}" if end < len(rows) else None}

    def _numbered_page(self, rows: list[dict], query: dict[str, str]) -> dict:
        page = int(query.get("page", "1"))
        size = int(query.get("per_page", self.page_size))
        return {"results": rows[(page - 1) * size : page * size], "page": page}


def _handler_for(api: FakeCrmApi) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one ``FakeCrmApi``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            answer = api.respond(parts.path, query, dict(self.headers))
            if isinstance(answer, Fault) and answer.status is None:
                self.close_connection = True
                return
            status, body, extra = 200, answer, {}
            if isinstance(answer, Fault):
                status, body = answer.status, answer.body
                if answer.retry_after is not None:
                    extra["Retry-After"] = answer.retry_after
            payload = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Keep test output quiet."""

    return Handler
