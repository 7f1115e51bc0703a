"""The shared engine: one customer's record, its timeline, lanes of customers, and the batch commit.

The Faust worker (``streams/``) and the offline tools (``offline/``) both drive it unchanged.
"""
