"""The layers' import rules of docs/architecture.md hold, and breaking one is caught."""

from __future__ import annotations

from pathlib import Path

from tests.mapped_tree import build, run_in_tree, tool_command


def test_every_layer_keeps_its_import_rules(tmp_path: Path) -> None:
    done = run_in_tree(build(tmp_path), tool_command(["lint-imports"]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 5 kept, 0 broken." in done.stdout


def test_a_feature_module_that_imports_sql_breaks_the_plain_layer_rule(tmp_path: Path) -> None:
    tree = build(tmp_path, copied=("features",))
    (tree / "churnwatch" / "features" / "leak.py").write_text("import sqlalchemy\n")
    done = run_in_tree(tree, tool_command(["lint-imports"]))
    assert done.returncode == 1
    assert "churnwatch.features.leak -> sqlalchemy" in done.stdout
    assert "Contracts: 4 kept, 1 broken." in done.stdout
