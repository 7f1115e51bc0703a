"""Python's cyclic garbage collector, set for a long-running process with a large heap.

CPython 3.11 collects its youngest generation after every 700 net allocations
of container objects, and the whole heap every hundred of those once the
objects that survived the last full collection have grown by a quarter. A
worker holds hundreds of thousands of long-lived objects (Faust's and
SQLAlchemy's machinery, the lanes, the cached customer records), and every
full collection walks all of them: in
``bench.pipeline --events 50000`` the collector ran 1,340 to 1,980 times in each
of the worker's two processes and took 2.2 to 2.7 s of CPU in each, most of it in
9 to 15 full collections of 140 to 200 ms, pauses that land on the batch in flight
(tuned as here: 0.2 to 0.6 s per process, and 20 to 65 % more events per second).
What start-up built lives as long as the process, so it is frozen out of every
later collection; and a youngest generation of tens of thousands lets a batch's
short-lived objects die by reference counting before a collection sees them.
"""

from __future__ import annotations

import gc


def tune_for_long_run(threshold: int) -> None:
    """Freeze every object alive now; collect the youngest generation every ``threshold``.

    The older generations keep Python's ratios to the youngest, so cyclic
    garbage that survives a collection is still found. ``threshold`` 0 leaves
    the collector as Python set it.
    """
    if threshold <= 0:
        return
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(threshold, middle, oldest)
