"""The layers' import rules of docs/architecture.md hold, and breaking one is caught."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.mapped_tree import ROOT, build, run_in_tree, tool_command

#: the import-linter contracts of pyproject.toml, each of which must be checked
CONTRACTS = len(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
)


def test_every_layer_keeps_its_import_rules(tmp_path: Path) -> None:
    done = run_in_tree(build(tmp_path), tool_command(["lint-imports"]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {CONTRACTS} kept, 0 broken." in done.stdout


def test_a_feature_module_that_imports_sql_breaks_the_plain_layer_rule(tmp_path: Path) -> None:
    tree = build(tmp_path, copied=("features",))
    (tree / "churnwatch" / "features" / "leak.py").write_text("import sqlalchemy\n")
    done = run_in_tree(tree, tool_command(["lint-imports"]))
    assert done.returncode == 1
    assert "churnwatch.features.leak -> sqlalchemy" in done.stdout
    assert f"Contracts: {CONTRACTS - 1} kept, 1 broken." in done.stdout
