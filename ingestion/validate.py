"""Turn a parsed input record into a typed raw row, or say exactly why it cannot be loaded."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from cdp.contracts import Contract, Field

_INTEGER = re.compile(r"^[+-]?\d+$")
_MAX_DECIMAL = Decimal("1e16")


@dataclass(frozen=True)
class Rejection:
    """Why a record was quarantined: the field at fault (if any) and an actionable reason."""

    reason: str
    field: str | None = None


@dataclass(frozen=True)
class ValidRow:
    """A record converted to warehouse types, plus the input fields the contract does not know."""

    values: dict
    extra: dict


class _BadValue(ValueError):
    pass


def _as_text(value: object) -> str:
    if isinstance(value, (dict, list, bool)):
        raise _BadValue(f"expected text, found {type(value).__name__}")
    return str(value)


def _as_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _BadValue(f"{value!r} is not an ISO 8601 timestamp") from None
    else:
        raise _BadValue(f"expected an ISO 8601 timestamp, found {type(value).__name__}")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise _BadValue(f"{value!r} is not a date (expected YYYY-MM-DD)") from None
    raise _BadValue(f"expected a date (YYYY-MM-DD), found {type(value).__name__}")


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise _BadValue("expected a number, found bool")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _BadValue(f"{value!r} is not a number") from None
    if not number.is_finite() or abs(number) >= _MAX_DECIMAL:
        raise _BadValue(f"{value!r} is not a finite amount below 10^16")
    return number


def _as_integer(value: object) -> int:
    if isinstance(value, bool):
        raise _BadValue("expected an integer, found bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value)
    raise _BadValue(f"{value!r} is not an integer")


def _as_double(value: object) -> float:
    if isinstance(value, bool):
        raise _BadValue("expected a number, found bool")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _BadValue(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise _BadValue(f"{value!r} is not a finite number")
    return number


def _as_json(value: object) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _BadValue(f"{value[:40]!r} is not JSON") from None
    if not isinstance(value, dict):
        raise _BadValue(f"expected a JSON object, found {type(value).__name__}")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


_CONVERTERS = {
    "string": _as_text,
    "timestamp": _as_timestamp,
    "date": _as_date,
    "decimal": _as_decimal,
    "integer": _as_integer,
    "double": _as_double,
    "json": _as_json,
}


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _convert(field: Field, value: object) -> object:
    converted = _CONVERTERS[field.kind](value)
    if field.choices and converted not in field.choices:
        allowed = ", ".join(field.choices)
        raise _BadValue(f"{converted!r} is not one of: {allowed}")
    return converted


def validate_record(contract: Contract, record: dict) -> ValidRow | Rejection:
    """Check one record against its contract and convert it to warehouse types."""
    values: dict = {}
    for field in contract.fields:
        raw_value = record.get(field.name)
        if _is_missing(raw_value):
            if field.required:
                return Rejection(f"missing required field '{field.name}'", field.name)
            values[field.column] = None
            continue
        try:
            values[field.column] = _convert(field, raw_value)
        except _BadValue as exc:
            return Rejection(f"field '{field.name}': {exc}", field.name)
    for description, rule in contract.row_rules:
        if not rule(values):
            return Rejection(description)
    known = {field.name for field in contract.fields}
    extra = {k: v for k, v in record.items() if k not in known and not _is_missing(v)}
    return ValidRow(values, extra)
