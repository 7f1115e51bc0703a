"""The installed ``churnwatch`` package as one folder tree, for tools that read source files.

The design card's top-level folders (``streams/``, ``engine/`` ...) install as subpackages
of ``churnwatch`` (``[tool.setuptools.package-dir]`` in ``pyproject.toml``). mypy and
import-linter find modules by walking folders, so they are run on a tree of symlinks with
the installed shape: ``churnwatch/`` holding the core modules and one link per mapped folder.

``python -m tests.mapped_tree mypy`` type-checks that tree with the project's configuration;
``python -m tests.mapped_tree lint-imports`` checks the layers' import rules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mapped_folders() -> dict[str, Path]:
    """Each mapped subpackage's leaf name and its source folder."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = pyproject["tool"]["setuptools"]["package-dir"]
    return {name.removeprefix("churnwatch."): ROOT / folder for name, folder in mapping.items()}


def build(dest: Path, *, copied: tuple[str, ...] = ()) -> Path:
    """Lay the package out under ``dest`` and return the folder that holds ``churnwatch``.

    Mapped folders named in ``copied`` are copied rather than linked, so that a test
    can add a module to them without touching the checkout.
    """
    package = dest / "churnwatch"
    package.mkdir(parents=True)
    for entry in (ROOT / "churnwatch").iterdir():
        if entry.name != "__pycache__":
            os.symlink(entry, package / entry.name)
    for leaf, folder in mapped_folders().items():
        if leaf in copied:
            shutil.copytree(folder, package / leaf, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            os.symlink(folder, package / leaf)
    os.symlink(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def run_in_tree(tree: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command in the tree, with the tree's ``churnwatch`` first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)


def tool_command(argv: list[str]) -> list[str]:
    """The command line of a tool installed beside this Python (a module, or a script)."""
    script = Path(sys.executable).parent / argv[0]
    return [str(script), *argv[1:]] if script.exists() else [sys.executable, "-m", *argv]


def main(argv: list[str]) -> int:
    """Run ``mypy`` or ``lint-imports`` with the mapped tree as its working directory."""
    with tempfile.TemporaryDirectory(prefix="churnwatch-tree-") as tmp:
        done = run_in_tree(build(Path(tmp)), tool_command(argv))
        print(done.stdout, end="")
        print(done.stderr, end="", file=sys.stderr)
        return done.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:] or ["mypy"]))
