"""The topic contract: the JSON Schema of every topic's records, generated from the code.

Input records are the pydantic models that validate them (:mod:`churnwatch.events`,
:mod:`churnwatch.winback.outcomes`); output records are the ``TypedDict``s the worker
builds (:mod:`churnwatch.records`). Field docstrings become descriptions, and the
fixed value sets the code defines (risk levels, tiers, reasons, stages, channels)
become ``enum``s. ``churnwatch schema --write`` writes them to ``docs/schemas/``,
beside ``docs/asyncapi.yaml`` and ``docs/contract.md``, which describe the topics
for integrators; ``tests/unit/test_contract.py`` fails when they drift apart.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from churnwatch.alerts.config import LEVELS, Action
from churnwatch.events import (
    COMPLAINTS,
    CUSTOMERS,
    ENGAGEMENT,
    INPUT_TOPICS,
    PURCHASES,
    event_models,
)
from churnwatch.features.lifecycle import STAGES
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import REASONS
from churnwatch.records import ChurnAlert, CustomerChange, DeadLetterRecord, WinbackTask
from churnwatch.topics import (
    ALL_TOPICS,
    CHURN_ALERTS,
    CUSTOMER_CHANGES,
    DEAD_LETTERS,
    REKEYED,
    WINBACK_OUTCOMES,
    WINBACK_TASKS,
)
from churnwatch.winback.outcomes import Outcome

#: the JSON Schema dialect of the files: draft-07, the one every AsyncAPI 3 tool must read
#: (pydantic writes 2020-12; its output here differs only in where definitions live)
DIALECT = "http://json-schema.org/draft-07/schema#"
#: where the generated schemas live, relative to the repository's root
SCHEMAS_DIR = Path("docs") / "schemas"
#: the command that regenerates them
REGENERATE = "churnwatch schema --write"


@dataclass(frozen=True)
class TopicRecords:
    """What travels on one topic: the type of its record values and who writes them."""

    topic: str
    #: the type pydantic turns into the JSON Schema
    record: Any
    #: ``validation``: what the worker accepts; ``serialization``: what it writes
    mode: Literal["validation", "serialization"]
    #: one line on the records, the schema's ``description``
    description: str


def _by_type(topic: str, *topics: str) -> Any:
    """The events of ``topics``, told apart by their ``type`` field."""
    models = [model for name in (topic, *topics) for model in event_models(name)]
    if len(models) == 1:
        return models[0]
    # a discriminated union: the schema maps each ``type`` to its one model
    return Annotated[Union[tuple(models)], Field(discriminator="type")]  # noqa: UP007


#: every topic in :data:`churnwatch.topics.ALL_TOPICS`, with its records
TOPIC_RECORDS: dict[str, TopicRecords] = {
    t.topic: t
    for t in (
        TopicRecords(
            PURCHASES, _by_type(PURCHASES), "validation", "Purchases and refunds, as sent."
        ),
        TopicRecords(
            COMPLAINTS,
            _by_type(COMPLAINTS),
            "validation",
            "Complaints opened and resolved, as sent.",
        ),
        TopicRecords(
            ENGAGEMENT,
            _by_type(ENGAGEMENT),
            "validation",
            "Logins, email, campaigns, member events, points, support contacts and surveys.",
        ),
        TopicRecords(
            CUSTOMERS,
            _by_type(CUSTOMERS),
            "validation",
            "Customer profile upserts (a compacted topic: the newest per customer counts).",
        ),
        TopicRecords(
            REKEYED,
            _by_type(*INPUT_TOPICS),
            "validation",
            "Internal: input records whose key was not their customer_id, unchanged, "
            "re-keyed by customer_id.",
        ),
        TopicRecords(
            DEAD_LETTERS,
            DeadLetterRecord,
            "serialization",
            "Rejected input records, with where they came from and why.",
        ),
        TopicRecords(
            CHURN_ALERTS, ChurnAlert, "serialization", "Churn alerts raised by the worker."
        ),
        TopicRecords(
            CUSTOMER_CHANGES,
            CustomerChange,
            "serialization",
            "Lifecycle stage and value tier moves of each customer.",
        ),
        TopicRecords(
            WINBACK_TASKS,
            WinbackTask,
            "serialization",
            "Win-back tasks for the CRM, one per alert.",
        ),
        TopicRecords(
            WINBACK_OUTCOMES,
            Outcome,
            "validation",
            "What the CRM reports on a win-back task.",
        ),
    )
}
assert tuple(TOPIC_RECORDS) == ALL_TOPICS, "every topic has its records, in ALL_TOPICS' order"

#: the topics the worker reads (streams/app.py: its input agent and the outcomes agent)
RECEIVED: tuple[str, ...] = (*INPUT_TOPICS, REKEYED, WINBACK_OUTCOMES)
#: the topics the worker writes (streams/publisher.py)
SENT: tuple[str, ...] = (REKEYED, DEAD_LETTERS, CHURN_ALERTS, CUSTOMER_CHANGES, WINBACK_TASKS)
#: the topics whose records carry no key; every other one is keyed by customer_id
UNKEYED: tuple[str, ...] = (DEAD_LETTERS,)

#: the value sets the code defines for fields of the output records
_action = Action.model_json_schema()["properties"]
_ENUMS: dict[str, dict[str, Any]] = {
    "risk_level": {"enum": list(LEVELS)},
    "value_tier": {"enum": list(TIERS)},
    "reason": {"enum": list(REASONS)},
    "lifecycle_stage": {"enum": list(STAGES)},
    "field": {"enum": ["lifecycle_stage", "value_tier"]},
    "channel": {"enum": _action["channel"]["enum"]},
    "priority": {k: _action["priority"][k] for k in ("minimum", "maximum")},
}
#: the output records whose fields :data:`_ENUMS` narrows (an input's channel is free text)
_NARROWED = (CHURN_ALERTS, CUSTOMER_CHANGES, WINBACK_TASKS)


def schema_of(topic: str) -> dict[str, Any]:
    """The JSON Schema of the record values on ``topic``."""
    records = TOPIC_RECORDS[topic]
    schema = TypeAdapter(records.record).json_schema(
        mode=records.mode, ref_template="#/definitions/{model}"
    )
    if "$defs" in schema:
        schema["definitions"] = schema.pop("$defs")
    if topic in _NARROWED:
        for name, field in schema["properties"].items():
            # a copy: a caller may change the schema it is given
            field.update(copy.deepcopy(_ENUMS.get(name, {})))
    _one_line_descriptions(schema)
    body = {k: v for k, v in schema.items() if k not in ("title", "description")}
    # a union has no title or description of its own: the topic names every schema
    return {"$schema": DIALECT, "title": topic, "description": records.description, **body}


def _one_line_descriptions(node: Any) -> None:
    """Join the lines of every multi-line docstring that became a description."""
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            node["description"] = " ".join(node["description"].split())
        for value in node.values():
            _one_line_descriptions(value)
    elif isinstance(node, list):
        for value in node:
            _one_line_descriptions(value)


def schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every topic with the JSON Schema of its records, in the order of ``ALL_TOPICS``."""
    for topic in TOPIC_RECORDS:
        yield topic, schema_of(topic)


def render(schema: dict[str, Any]) -> str:
    """A schema as the committed file holds it: stable, indented, newline-terminated."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def file_name(topic: str) -> str:
    """The file of ``topic``'s schema inside :data:`SCHEMAS_DIR`."""
    return f"{topic}.json"


def write(folder: Path) -> list[Path]:
    """Write every topic's schema into ``folder``; return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, schema in schemas():
        path = folder / file_name(topic)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
