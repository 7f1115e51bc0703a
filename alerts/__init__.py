"""Alert policy: from scores to alerts. Plain Python, shared with replay."""
