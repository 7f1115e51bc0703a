"""Every document a file of the repository cites is in the repository.

Code, comments, help texts and pages once pointed readers at design notes that
were never part of the repository, so an integrator had nothing to read. Here a
citation must resolve: a project document named in capitals (``README.md``) must
be a tracked file, a path into one of the repository's folders must exist, and a
relative link of a Markdown page must reach a tracked file or folder.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: a project document named in capitals, as people cite them: DESIGN.md, README.md
_CAPITALS = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_-]*\.md)\b")
#: a path to a Markdown file: docs/contract.md, ../deploy/README.md
_PATH = re.compile(r"(?<![\w/.-])((?:\.\.?/)*(?:[\w.-]+/)+[\w.-]+\.md)\b")
#: the target of a Markdown link
_LINK = re.compile(r"\]\(([^)\s]+)\)")
#: documents that were cited but never in the repository, and must not come back
GONE = ("DESIGN.md",)


def _tracked() -> list[str]:
    """The repository's tracked files (every file under it outside a git checkout)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        skipped = {".git", ".venv", "__pycache__", "node_modules"}
        listed = [
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not skipped & set(p.relative_to(ROOT).parts)
        ]
    return [name for name in listed if (ROOT / name).is_file()]


TRACKED = _tracked()
TRACKED_SET = set(TRACKED)
NAMES = {Path(name).name for name in TRACKED}
FOLDERS = {Path(name).parts[0] for name in TRACKED if len(Path(name).parts) > 1}


#: this file names what it forbids, in its checks and their own tests
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()


def _texts() -> Iterator[tuple[str, str]]:
    """Every tracked text file but this one, with its contents."""
    for name in TRACKED:
        if name == SELF:
            continue
        try:
            yield name, (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images and other binaries cite nothing


TEXTS = dict(_texts())


def _in_repository(target: Path) -> bool:
    """Whether ``target`` (absolute) is a tracked file or a folder holding one."""
    try:
        relative = target.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return False
    return relative in TRACKED_SET or any(t.startswith(relative + "/") for t in TRACKED)


def _capital_citations() -> dict[str, list[str]]:
    """Each document named in capitals, with the files that cite it."""
    cited: dict[str, list[str]] = {}
    for name, text in TEXTS.items():
        for found in sorted({m.group(1) for m in _CAPITALS.finditer(text)}):
            cited.setdefault(found, []).append(name)
    return cited


CITED = _capital_citations()


def test_no_file_cites_the_design_notes_that_were_never_here() -> None:
    assert len(TEXTS) > 100
    for gone in GONE:
        citing = [name for name, text in TEXTS.items() if gone in text]
        assert citing == [], f"{gone} is not in the repository; cite docs/contract.md instead"


@pytest.mark.parametrize("document", sorted(CITED))
def test_a_document_named_in_capitals_is_in_the_repository(document: str) -> None:
    assert document in NAMES, f"{document} is cited by {CITED[document]} but not in the repository"


def test_paths_into_the_repository_s_folders_exist() -> None:
    missing = []
    for name, text in TEXTS.items():
        for match in _PATH.finditer(text):
            path = match.group(1)
            first = Path(path).parts[0]
            # a folder of the repository from its root, or a path relative to the file;
            # other paths are what commands write (backtest-report/report.md)
            base = ROOT if first in FOLDERS else (ROOT / name).parent if first == ".." else None
            if base is not None and not _in_repository(base / path):
                missing.append(f"{name}: {path}")
    assert missing == []


def test_relative_links_of_the_pages_reach_the_repository() -> None:
    pages = [name for name in TEXTS if name.endswith(".md")]
    assert "docs/contract.md" in pages
    broken = []
    for name in pages:
        for match in _LINK.finditer(TEXTS[name]):
            target = match.group(1).split("#")[0]
            if not target or re.match(r"^[a-z][a-z+.-]*:", target):
                continue  # an anchor on the page, or a URL
            if not _in_repository((ROOT / name).parent / target):
                broken.append(f"{name}: {match.group(1)}")
    assert broken == []


def test_the_checks_catch_what_they_are_for() -> None:
    assert _CAPITALS.findall("see DESIGN.md, 'Topics'; README.md") == ["DESIGN.md", "README.md"]
    assert _PATH.findall("(docs/contract.md) or ../deploy/README.md") == [
        "docs/contract.md",
        "../deploy/README.md",
    ]
    assert not _in_repository(ROOT / "docs" / "design.md")
    assert _in_repository(ROOT / "docs" / "schemas")
