"""The topic contract: docs/schemas/ is what the code makes, and the records fit it.

The schemas are generated from the models that validate the input records and the
types of the records the worker writes (churnwatch/contract.py). Here the committed
files are compared with a fresh generation, and real records, valid and invalid,
are checked against them, so that the schemas say neither more nor less than the
code does.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft7Validator
from typer.testing import CliRunner

from churnwatch import contract
from churnwatch.alerts.config import load_playbook
from churnwatch.alerts.policy import build_alert
from churnwatch.cli import app
from churnwatch.engine.customer import change_record
from churnwatch.events import INPUT_TOPICS, InvalidEvent, parse_object
from churnwatch.models.scoring import Score
from churnwatch.offline.replay import CONTRACT_COLUMNS
from churnwatch.records import RAW_KEEP_BYTES, DeadLetter, RawRecord
from churnwatch.sim.demo import DemoSummary
from churnwatch.sim.simulator import Simulation, records
from churnwatch.topics import (
    ALL_TOPICS,
    CHURN_ALERTS,
    CUSTOMER_CHANGES,
    DEAD_LETTERS,
    REKEYED,
    WINBACK_OUTCOMES,
    WINBACK_TASKS,
)
from churnwatch.winback.outcomes import decode_outcome
from churnwatch.winback.tasks import build_task
from examples.crm_client import outcomes_for
from tests.contract_helpers import SCHEMAS, schema_errors

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
PAGE = ROOT / "docs" / "contract.md"
HOW = f"regenerate them with `{contract.REGENERATE}` from the repository's root and commit"


def test_the_committed_schemas_are_what_the_code_makes() -> None:
    files = {path.name for path in SCHEMAS.glob("*.json")}
    expected = {contract.file_name(topic) for topic in ALL_TOPICS}
    assert files == expected, f"docs/schemas/ should hold one file per topic: {HOW}"
    for topic, schema in contract.schemas():
        committed = (SCHEMAS / contract.file_name(topic)).read_text(encoding="utf-8")
        assert committed == contract.render(schema), f"docs/schemas/{topic}.json is stale: {HOW}"


def test_every_topic_has_its_records_and_each_schema_is_valid() -> None:
    assert tuple(contract.TOPIC_RECORDS) == ALL_TOPICS
    for topic, schema in contract.schemas():
        Draft7Validator.check_schema(schema)
        assert schema["title"] == topic
        assert schema["$schema"] == contract.DIALECT


def test_simulated_records_fit_their_schemas_and_the_bad_ones_do_not() -> None:
    sim = Simulation(40, AT, datetime(2026, 6, 1, tzinfo=UTC), seed=3)
    seen: dict[str, int] = {}
    refused = 0
    for record in records(sim, bad_share=0.2, limit=800):
        value = orjson.loads(record.value) if record.kind != "not_json" else None
        if record.kind == "valid":
            assert schema_errors(record.topic, value) == [], value
            assert schema_errors(REKEYED, value) == [], value
            seen[record.topic] = seen.get(record.topic, 0) + 1
        elif record.kind in ("not_object", "missing_customer_id", "wrong_type", "negative_amount"):
            # what the schema alone can tell (a duplicate id or a late event needs history)
            assert schema_errors(record.topic, value), (record.kind, value)
            with pytest.raises(InvalidEvent):
                parse_object(record.topic, value)
            refused += 1
    assert set(seen) == set(INPUT_TOPICS) and refused > 10


def test_the_schemas_hold_what_the_models_hold() -> None:
    base = {"event_id": "e1", "customer_id": "c1", "ts": "2026-03-01T13:00:00+01:00"}
    survey = {**base, "type": "survey_response", "nps": 9, "channel_hint": "kept"}
    complaint = {**base, "type": "complaint_opened", "complaint_id": "k1", "severity": 2}
    valid = [
        ("engagement", survey),
        ("engagement", {**base, "type": "login", "ts": 1772366400000}),
        ("complaints", {**complaint, "category": "delivery"}),
        ("customers", {**base, "type": "profile", "region": "north"}),
    ]
    invalid = [
        ("engagement", {**survey, "nps": 11}),
        ("engagement", {**base, "type": "login", "ts": "2026-03-01T13:00:00"}),
        ("engagement", {**base, "type": "login", "ts": 1772366400}),
        ("complaints", {**complaint, "category": "weather"}),
        ("complaints", {**complaint, "category": "product", "severity": 4}),
        ("purchases", {**base, "type": "login"}),
        ("customers", {**base, "type": "profile", "region": "n" * 201}),
    ]
    for topic, value in valid:
        assert schema_errors(topic, value) == [], value
        parse_object(topic, value)
    for topic, value in invalid:
        assert schema_errors(topic, value), value
        with pytest.raises(InvalidEvent):
            parse_object(topic, value)


def test_the_worker_s_records_fit_their_schemas() -> None:
    score = Score(0.8, "competitor", [{"indicator": "days_since_purchase", "value": 41.0}], "r1")
    segments = {"region": "north", "industry": None, "channel": "web", "segment": None}
    alert = build_alert("c1", "e9", AT, "high", score, "potential", "at_risk", "case-1", segments)
    task = build_task(alert, load_playbook())
    change = change_record("c1", AT.timestamp(), "value_tier", None, "high", "e9", segments)
    letters = [
        DeadLetter.of(RawRecord("purchases", 2, 17, b"c1", b"\xff\xfe"), "bad", AT),
        DeadLetter.of(RawRecord("purchases", 0, 1, None, b"x" * (RAW_KEEP_BYTES + 1)), "big", AT),
        DeadLetter.of(RawRecord(REKEYED, 0, 3, b"c1", b"{}", "purchases", "purchases/1/9"), "", AT),
    ]
    assert schema_errors(CHURN_ALERTS, alert) == []
    assert schema_errors(WINBACK_TASKS, task) == []
    assert schema_errors(CUSTOMER_CHANGES, change) == []
    for letter in letters:
        assert schema_errors(DEAD_LETTERS, letter.to_json()) == []
    # and the schemas are no blank cheques
    assert schema_errors(CHURN_ALERTS, {**alert, "risk_level": "severe"})
    assert schema_errors(WINBACK_TASKS, {**task, "due_by": "2026-03-01T13:00:00+01:00"})
    assert schema_errors(CUSTOMER_CHANGES, {k: v for k, v in change.items() if k != "to_value"})
    assert schema_errors(DEAD_LETTERS, {**letters[0].to_json(), "raw_encoding": "hex"})


def test_crm_outcomes_fit_their_schema() -> None:
    outcome = {"task_id": "t1", "status": "declined", "ts": "2026-03-02T09:00:00Z", "note": "no"}
    assert schema_errors(WINBACK_OUTCOMES, outcome) == []
    # the example CRM of examples/ reads tasks and writes reports by the contract alone
    task = {"task_id": "t2", "customer_id": "c1", "ts": "2026-03-01T12:00:00+00:00"}
    for report in outcomes_for(task, accept_share=0.5, contact_hours=6.0):
        assert schema_errors(WINBACK_OUTCOMES, report) == []
    decode_outcome(orjson.dumps(outcome))
    assert schema_errors(WINBACK_OUTCOMES, {**outcome, "status": "ignored"})
    with pytest.raises(InvalidEvent):
        decode_outcome(orjson.dumps({**outcome, "status": "ignored"}))


def test_the_schema_command_prints_and_writes_the_schemas(tmp_path: Path) -> None:
    runner = CliRunner()
    one = runner.invoke(app, ["schema", "purchases"])
    assert one.exit_code == 0, one.output
    assert one.output == (SCHEMAS / "purchases.json").read_text()
    every = runner.invoke(app, ["schema"])
    assert every.exit_code == 0 and list(json.loads(every.output)) == list(ALL_TOPICS)
    written = runner.invoke(app, ["schema", "--write", "--out", str(tmp_path)])
    assert written.exit_code == 0, written.output
    for topic in ALL_TOPICS:
        name = contract.file_name(topic)
        assert (tmp_path / name).read_text() == (SCHEMAS / name).read_text()
    unknown = runner.invoke(app, ["schema", "nope"])
    assert unknown.exit_code == 2 and "unknown topic" in unknown.output


def _sections() -> dict[str, str]:
    """docs/contract.md's ``###`` sections by heading, backticks dropped."""
    parts = re.split(r"^### (.+)$", PAGE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {
        heading.replace("`", "").strip(): body
        for heading, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def _first_column(section: str, header: str) -> list[str]:
    """The names in the first column of the tables whose first header cell is ``header``."""
    names: list[str] = []
    inside = False
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            inside = False
        elif cells[0] == header:
            inside = True
        elif inside and not set(cells[0]) <= {"-"}:
            names.append(cells[0].strip("`"))
    return names


def _properties(schema: dict[str, Any]) -> list[str]:
    """Every field a topic's schema names, in order, the union's members' included."""
    found = list(schema.get("properties", {}))
    for member in schema.get("definitions", {}).values():
        found += [name for name in member.get("properties", {}) if name not in found]
    return found


def test_the_contract_page_describes_every_field_of_every_topic() -> None:
    sections = _sections()
    common = _first_column(sections["Every input event"], "field")
    assert common == ["event_id", "customer_id", "ts", "type"]
    for topic, schema in contract.schemas():
        assert topic in sections, f"docs/contract.md has no section on {topic}"
        if topic == REKEYED:
            continue  # its records are the input topics'
        listed = _first_column(sections[topic], "field")
        if topic in INPUT_TOPICS:
            assert set(common) | set(listed) == set(_properties(schema)), topic
        else:
            assert listed == _properties(schema), f"docs/contract.md's {topic} table"


def test_the_contract_page_examples_fit_their_schemas() -> None:
    sections = _sections()
    examples = 0
    for topic in ALL_TOPICS:
        for block in re.findall(r"```json\n(.*?)```", sections[topic], flags=re.DOTALL):
            assert schema_errors(topic, json.loads(block)) == [], f"{topic} example {block}"
            examples += 1
    assert examples >= 8


def test_the_contract_page_links_the_schemas_and_the_asyncapi_document() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for topic in ALL_TOPICS:
        assert f"(schemas/{contract.file_name(topic)})" in text
    assert "(asyncapi.yaml)" in text and "`churnwatch schema --write`" in text


def test_the_command_outputs_on_the_contract_page_are_the_code_s() -> None:
    sections = _sections()
    replay = next(body for heading, body in sections.items() if "--scores-out" in heading)
    assert tuple(_first_column(replay, "column")) == CONTRACT_COLUMNS
    demo = next(body for heading, body in sections.items() if heading.startswith("churnwatch demo"))
    assert _first_column(demo, "field") == [f.name for f in dataclasses.fields(DemoSummary)]
