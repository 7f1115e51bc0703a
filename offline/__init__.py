"""Offline tools over the stored history: import, training, replay, backtest and its report."""
