"""The README's feature table says what the code computes."""

from __future__ import annotations

from pathlib import Path

from churnwatch.features.row import FEATURES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_feature_table_matches_the_code() -> None:
    lines = README.read_text().splitlines()
    start = lines.index("| feature | window | definition | indicator (DOMAIN.md) |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        name, window, definition, indicator = (c.strip() for c in line.strip("|").split(" | "))
        rows.append((name.strip("`"), window, definition, indicator))
    assert rows == [(f.name, f.window, f.definition, f.indicator) for f in FEATURES]
