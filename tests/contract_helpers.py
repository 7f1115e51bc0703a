"""Records checked against the committed topic schemas of docs/schemas/.

The unit tests check hand-built and simulated records with it, the end-to-end
tests what a real worker sends; times the worker writes must be UTC.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker

from churnwatch import contract

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / contract.SCHEMAS_DIR


def _offset_time(value: object) -> bool:
    """An input's date-time: ISO 8601 with a UTC offset."""
    if not isinstance(value, str):
        return True
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _utc_time(value: object) -> bool:
    """An output's date-time: ISO 8601 in UTC."""
    return not isinstance(value, str) or (
        _offset_time(value) and datetime.fromisoformat(value).utcoffset() == UTC.utcoffset(None)
    )


@cache
def validator(topic: str) -> Draft7Validator:
    """A validator of ``topic``'s committed schema that checks date-time fields too."""
    checker = FormatChecker(formats=())
    output = contract.TOPIC_RECORDS[topic].mode == "serialization"
    checker.checks("date-time")(_utc_time if output else _offset_time)
    schema = json.loads((SCHEMAS / contract.file_name(topic)).read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=checker)


def schema_errors(topic: str, record: Any) -> list[str]:
    """What is wrong with ``record`` as a value of ``topic`` (nothing: an empty list)."""
    return [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator(topic).iter_errors(record)
    ]


def assert_fit(topic: str, records: Iterable[Any]) -> int:
    """Assert that every one of ``records`` fits ``topic``'s schema; return how many."""
    count = 0
    for record in records:
        errors = schema_errors(topic, record)
        assert errors == [], f"a {topic} record does not fit docs/schemas/: {errors}: {record}"
        count += 1
    return count
