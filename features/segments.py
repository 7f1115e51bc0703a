"""A customer's segments: where they are, what they do, how they buy.

Customers are served by segment as well as by value tier (docs/alerts.md).
Region, industry and segment come from the newest profile on the ``customers``
topic; the channel (online or offline) from the newest purchase. Each is
``None`` while unknown.
"""

from __future__ import annotations

from typing import Any

from churnwatch.features.state import CustomerState

#: the segment dimensions, in the order records and filters list them
SEGMENTS = ("region", "industry", "channel", "segment")


#: what segments are read from: the state's newest profile and newest purchase records
#: (immutable tuples, so holding them keeps the segments of that moment)
SegmentSource = tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]


def segment_source(state: CustomerState) -> SegmentSource:
    """The records :func:`segments_of` reads, as they are now."""
    return state.profile, state.last_channel


def segments_of(source: SegmentSource) -> dict[str, str | None]:
    """The customer's value in each of :data:`SEGMENTS`."""
    profile, last_channel = source
    region, industry, segment = (*(profile or ())[3:6], None, None, None)[:3]
    channel = last_channel[2] if last_channel else None
    return {"region": region, "industry": industry, "channel": channel, "segment": segment}
