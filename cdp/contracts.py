"""The landing contract: what each ``<source>/<entity>`` must and may contain.

Each entity maps incoming field names (as they appear in the files) to typed warehouse columns.
The contract is data, so validation, loading and documentation are all driven by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """One contract field: its name in the file, its column in ``raw.*`` and its type."""

    name: str
    column: str
    kind: str  # string | timestamp | date | decimal | integer | double | json
    required: bool = False
    choices: tuple[str, ...] = ()
    #: JSON path inside the record for a column promoted out of a nested object (e.g.
    #: ``$.properties.price``). Promoted columns are a convenience copy: a value that does not
    #: convert becomes NULL instead of quarantining the row (the object itself is kept whole).
    promoted_from: str | None = None
    #: DuckDB compression forced on the column (``USING COMPRESSION``); None: DuckDB chooses.
    compression: str | None = None


@dataclass(frozen=True)
class Contract:
    """Fields, cross-field rules and de-duplication key of one landing entity."""

    source_entity: str
    fields: tuple[Field, ...]
    #: (description, SQL predicate over the typed columns) — a row failing one is quarantined.
    row_rules: tuple[tuple[str, str], ...] = ()
    #: Column that identifies a record across loads (events: messageId); None = whole-row hash.
    dedup_column: str | None = None
    #: A column every copy of a record shares (a replayed event keeps its timestamp): the search
    #: for earlier copies only reads rows within the batch's range of it (zone-map pruning).
    dedup_scope: str | None = None
    file_suffixes: tuple[str, ...] = field(
        default=(".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".parquet")
    )

    @property
    def input_fields(self) -> tuple[Field, ...]:
        """Fields that come from the input as such (not promoted out of nested objects)."""
        return tuple(f for f in self.fields if not f.promoted_from)

    @property
    def columns(self) -> list[str]:
        """Warehouse column names in contract order."""
        return [f.column for f in self.fields]


def _promoted(column: str, kind: str, path: str) -> Field:
    return Field(column, column, kind, promoted_from=path)


def _one_of(*columns: str) -> str:
    return " or ".join(f'"{column}" is not null' for column in columns)


CONTRACTS: dict[str, Contract] = {
    c.source_entity: c
    for c in (
        Contract(
            "crm/customers",
            (
                Field("crm_customer_id", "crm_customer_id", "string", required=True),
                Field("first_name", "first_name", "string"),
                Field("last_name", "last_name", "string"),
                Field("email", "email", "string"),
                Field("phone", "phone", "string"),
                Field("date_of_birth", "date_of_birth", "date"),
                Field("address_line1", "address_line1", "string"),
                Field("address_line2", "address_line2", "string"),
                Field("city", "city", "string"),
                Field("postcode", "postcode", "string"),
                Field("state", "state", "string"),
                Field("country", "country", "string"),
                Field("created_at", "created_at", "timestamp"),
                Field("updated_at", "updated_at", "timestamp"),
            ),
        ),
        Contract(
            "crm/orders",
            (
                Field("order_id", "order_id", "string", required=True),
                Field("crm_customer_id", "crm_customer_id", "string", required=True),
                Field("ordered_at", "ordered_at", "timestamp", required=True),
                Field("total_amount", "total_amount", "decimal", required=True),
                Field("currency", "currency", "string"),
                Field("item_count", "item_count", "integer"),
                Field("category", "category", "string"),
                Field("status", "status", "string"),
            ),
        ),
        Contract(
            "analytics/events",
            (
                # stored as is: every load reads it for all events in the batch's time range (the
                # replay search), 3x faster than compressed; writing is 3x cheaper too; costs
                # ~14 bytes per event more than zstd (bench/RESULTS.md, ingestion, "Sixth session")
                Field(
                    "messageId", "message_id", "string", required=True, compression="uncompressed"
                ),
                Field(
                    "type",
                    "type",
                    "string",
                    required=True,
                    choices=("track", "identify", "page"),
                ),
                Field("event", "event", "string"),
                Field("anonymousId", "anonymous_id", "string"),
                Field("userId", "user_id", "string"),
                Field("timestamp", "timestamp", "timestamp", required=True),
                Field("properties", "properties", "json"),
                Field("traits", "traits", "json"),
                # long and nearly unique per event (ip, user agent, page): zstd stores it in a
                # fifth of the space of DuckDB's own choice (dictionary + FSST) at half the
                # write CPU (bench/RESULTS.md, ingestion, "Sixth session")
                Field("context", "context", "json", compression="zstd"),
                # promoted for segments, profiles and features
                _promoted("page_url", "string", "$.context.page.url"),
                _promoted("product_id", "string", "$.properties.product_id"),
                _promoted("category", "string", "$.properties.category"),
                _promoted("price", "double", "$.properties.price"),
                _promoted("order_id", "string", "$.properties.order_id"),
                _promoted("revenue", "double", "$.properties.revenue"),
                _promoted("trait_email", "string", "$.traits.email"),
            ),
            row_rules=(
                ("anonymousId or userId is required", _one_of("anonymous_id", "user_id")),
                ("track events need an event name", "type <> 'track' or event is not null"),
            ),
            dedup_column="message_id",
            dedup_scope="timestamp",
        ),
        Contract(
            "thirdparty/intent",
            (
                Field("email", "email", "string"),
                Field("company_domain", "company_domain", "string"),
                Field("topic", "topic", "string", required=True),
                Field("intent_score", "intent_score", "double", required=True),
                Field("observed_at", "observed_at", "timestamp", required=True),
                Field("provider", "provider", "string"),
            ),
            row_rules=(
                ("email or company_domain is required", _one_of("email", "company_domain")),
            ),
        ),
        Contract(
            "consent/events",
            (
                Field("email", "email", "string"),
                Field("crm_customer_id", "crm_customer_id", "string"),
                Field("purpose", "purpose", "string", required=True),
                Field(
                    "status",
                    "status",
                    "string",
                    required=True,
                    choices=("granted", "denied", "revoked"),
                ),
                Field("recorded_at", "recorded_at", "timestamp", required=True),
                Field("source", "source", "string"),
            ),
            row_rules=(
                ("email or crm_customer_id is required", _one_of("email", "crm_customer_id")),
            ),
        ),
        Contract(
            "privacy/erasure_requests",
            (
                Field("request_id", "request_id", "string", required=True),
                Field("email", "email", "string"),
                Field("crm_customer_id", "crm_customer_id", "string"),
                Field("requested_at", "requested_at", "timestamp", required=True),
            ),
            row_rules=(
                ("email or crm_customer_id is required", _one_of("email", "crm_customer_id")),
            ),
        ),
    )
}
