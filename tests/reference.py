"""The fixed time the tests build their data from, and run their clocks at.

A test must give the same verdict on any day, so no test reads the wall clock
for its data: histories end at :data:`REFERENCE`. ``conftest.py`` moves this
process's clock there, and exports the same ``CHURNWATCH_CLOCK_OFFSET_S`` so
that every worker and command a test starts judges the data as on that day too.
``CHURNWATCH_TEST_REFERENCE`` (an ISO time) moves it, to run the whole suite
as on another day.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

_DEFAULT = "2026-11-30T00:00:00+00:00"

#: the end of the tests' histories, and the time their clocks start at
REFERENCE = datetime.fromisoformat(os.environ.get("CHURNWATCH_TEST_REFERENCE") or _DEFAULT)
if REFERENCE.tzinfo is None:
    REFERENCE = REFERENCE.replace(tzinfo=UTC)
