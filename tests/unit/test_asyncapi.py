"""docs/asyncapi.yaml: a valid AsyncAPI 3.0 document that says what the code does.

It is validated against the AsyncAPI Initiative's JSON schema of 3.0.0 documents
(vendored in tests/data/asyncapi/), then held to the code: one channel per topic
of churnwatch/topics.py, the worker's operations, the keys, and message payloads
that are the generated schemas of docs/schemas/, which its examples fit.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from churnwatch import contract
from churnwatch.events import InvalidEvent, decode
from churnwatch.topics import ALL_TOPICS, COMPACTED, DEAD_LETTERS

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "asyncapi.yaml"
DOC: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
SPEC = json.loads((ROOT / "tests" / "data" / "asyncapi" / "3.0.0.json").read_text())
HOW = "edit docs/asyncapi.yaml to match churnwatch/topics.py and churnwatch/contract.py"


def _resolve(ref: str) -> Any:
    """The part of the document a local ``#/…`` reference points at."""
    assert ref.startswith("#/"), ref
    node: Any = DOC
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    """Every ``$ref`` in ``node``, depth first."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _message(topic: str) -> dict[str, Any]:
    """The one message of ``topic``'s channel, references followed."""
    (message,) = DOC["channels"][topic]["messages"].values()
    return _resolve(message["$ref"]) if "$ref" in message else message


def test_it_is_a_valid_asyncapi_3_document() -> None:
    validator = jsonschema.Draft7Validator(SPEC)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(DOC)]
    assert errors == []
    assert DOC["asyncapi"] == "3.0.0"
    assert DOC["info"]["version"] == version("churnwatch")
    # the schema does catch a broken document
    broken = {**DOC, "operations": {"listen": {"action": "listen", "channel": {}}}}
    assert list(validator.iter_errors(broken))


def test_every_local_reference_resolves() -> None:
    local = [ref for ref in _refs(DOC) if ref.startswith("#")]
    assert len(local) > 2 * len(ALL_TOPICS)
    for ref in local:
        try:
            _resolve(ref)
        except (KeyError, TypeError):
            pytest.fail(f"{ref} points at nothing in docs/asyncapi.yaml")


def test_one_channel_per_topic_and_the_worker_s_operations() -> None:
    assert list(DOC["channels"]) == list(ALL_TOPICS), HOW
    for topic, channel in DOC["channels"].items():
        assert channel["address"] == topic
    by_action: dict[str, list[str]] = {"receive": [], "send": []}
    for operation in DOC["operations"].values():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        by_action[operation["action"]].append(channel)
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/")
    assert by_action == {"receive": list(contract.RECEIVED), "send": list(contract.SENT)}, HOW

    def cleanup(channel: dict[str, Any]) -> list[str]:
        kafka = channel.get("bindings", {}).get("kafka", {})
        return kafka.get("topicConfiguration", {}).get("cleanup.policy", [])

    compacted = {
        topic for topic, channel in DOC["channels"].items() if "compact" in cleanup(channel)
    }
    assert compacted == COMPACTED, HOW


def test_messages_carry_the_generated_schemas_and_the_keys() -> None:
    for topic in ALL_TOPICS:
        message = _message(topic)
        payload = message["payload"]
        assert payload["schemaFormat"] == "application/schema+json;version=draft-07"
        assert payload["schema"] == {"$ref": f"./schemas/{contract.file_name(topic)}"}
        target = (DOC_PATH.parent / payload["schema"]["$ref"]).resolve()
        assert target.is_file(), f"{topic}: {target} is missing; run `{contract.REGENERATE}`"
        assert json.loads(target.read_text())["$schema"] == contract.DIALECT
        key = message["bindings"]["kafka"]["key"]
        expected = "null" if topic in contract.UNKEYED else "string"
        assert key["type"] == expected, f"{topic}: key {key}; {HOW}"


def test_the_examples_fit_their_schemas() -> None:
    examples = 0
    for topic in ALL_TOPICS:
        schema = json.loads((ROOT / contract.SCHEMAS_DIR / contract.file_name(topic)).read_text())
        validator = jsonschema.Draft7Validator(schema)
        for example in _message(topic).get("examples", []):
            errors = [e.message for e in validator.iter_errors(example["payload"])]
            assert errors == [], f"{topic} example {example['name']!r}: {errors}"
            examples += 1
    assert examples >= 5


def test_the_dead_letter_example_is_what_the_worker_writes() -> None:
    (example,) = _message(DEAD_LETTERS)["examples"]
    letter = example["payload"]
    raw = letter["raw"].encode()
    assert letter["raw_bytes"] == len(raw)
    assert letter["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    now = datetime.fromisoformat(letter["ts"])
    assert now.utcoffset() == UTC.utcoffset(None)
    with pytest.raises(InvalidEvent) as rejected:
        decode(letter["source_topic"], raw, now=now, max_future_s=86400)
    assert str(rejected.value) == letter["error"]
