"""Alert policy and win-back tasks: from scores to actions. Plain Python, shared with replay."""
