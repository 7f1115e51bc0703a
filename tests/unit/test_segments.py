"""A customer's segments: from the newest profile and the newest purchase, in any order."""

from __future__ import annotations

from churnwatch.features.segments import segment_source, segments_of
from churnwatch.features.state import CustomerState, apply
from tests.builders import ev

HISTORY = [
    ev(1, "profile", region="north", industry="retail", segment="smb"),
    ev(5, "profile", region="south"),  # newer: its empty fields are empty
    ev(2, "purchase", amount=10.0, channel="offline"),
    ev(4, "purchase", amount=12.0, channel="online"),
    ev(3, "refund", amount=5.0, channel="offline"),
]


def _fold(events) -> CustomerState:
    state = CustomerState("c1")
    for event in events:
        apply(state, event)
    return state


def test_segments_come_from_the_newest_profile_and_purchase_in_any_order() -> None:
    expected = {"region": "south", "industry": None, "channel": "online", "segment": None}
    assert segments_of(segment_source(_fold(HISTORY))) == expected
    assert segments_of(segment_source(_fold(reversed(HISTORY)))) == expected
    # stored and read back
    state = _fold(HISTORY)
    assert segments_of(segment_source(CustomerState.from_dict(state.to_dict()))) == expected


def test_a_state_stored_before_segments_has_none_yet() -> None:
    stored = _fold(HISTORY[:1]).to_dict()
    stored["profile"] = stored["profile"][:3]  # (ts, event_id, signup) only
    del stored["last_channel"]
    old = CustomerState.from_dict(stored)
    assert segments_of(segment_source(old)) == dict.fromkeys(
        ("region", "industry", "channel", "segment")
    )
    assert segments_of((None, None))["region"] is None
