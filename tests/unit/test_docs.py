"""The documentation says what the code does, and reads as a manual, not a lab notebook."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from churnwatch.features.row import FEATURES

ROOT = Path(__file__).resolve().parents[2]
FEATURES_PAGE = ROOT / "docs" / "features.md"

#: every page a user reads: the README, docs/ and deploy/'s own README
PAGES = sorted([ROOT / "README.md", ROOT / "deploy" / "README.md", *(ROOT / "docs").glob("*.md")])

_HEX = re.compile(r"(?<![\w.-])[0-9a-f]{7,40}(?![\w-])")
_ISSUE = re.compile(r"(?<![\w/&])#\d+\b|\b(?:issue|pr|pull request)s?\s+#?\d+\b", re.IGNORECASE)


def _is_commit(name: str) -> bool:
    """Whether ``name`` names a commit of this repository (False outside a git checkout)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{name}^{{commit}}"],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


def lab_notes(text: str) -> list[str]:
    """Issue references and commit hashes in ``text``.

    A hex word counts as a hash when git knows it as a commit, or when it mixes
    digits and letters the way abbreviated hashes do (so a copy without git is
    still checked).
    """
    found = [m.group(0) for m in _ISSUE.finditer(text)]
    for m in _HEX.finditer(text):
        word = m.group(0)
        mixed = any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
        if mixed or _is_commit(word):
            found.append(word)
    return found


def test_feature_table_matches_the_code() -> None:
    lines = FEATURES_PAGE.read_text().splitlines()
    start = lines.index("| feature | window | definition | warning indicator |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        name, window, definition, indicator = (c.strip() for c in line.strip("|").split(" | "))
        rows.append((name.strip("`"), window, definition, indicator))
    assert rows == [(f.name, f.window, f.definition, f.indicator) for f in FEATURES]


def test_lab_notes_are_recognised() -> None:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=7", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    text = (
        f"measured at {head}, see issue #10 and Issue 7, fixed in 9ee691c; "
        "a heading ## 2, 0.0096 events, build 1769699379!11.6.0, page.md#one-worker"
    )
    assert lab_notes(text) == ["issue #10", "Issue 7", head, "9ee691c"]


def test_no_page_holds_commit_hashes_or_issue_numbers() -> None:
    assert len(PAGES) >= 8
    notes = {page.relative_to(ROOT).as_posix(): lab_notes(page.read_text()) for page in PAGES}
    assert {page: found for page, found in notes.items() if found} == {}


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_relative_link_reaches_its_file_and_heading() -> None:
    broken = []
    for page in PAGES:
        for target in _LINK.findall(page.read_text()):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(), re.MULTILINE)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.name}: {target}")
    assert broken == []


def test_the_readme_is_short_starts_with_two_commands_and_links_the_contract() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 200, f"the README has {len(lines)} lines; keep it to 200"
    assert lines[:6] == ["# churnwatch", "", "```", "make demo", "make test", "```"]
    for document in ("docs/contract.md", "docs/asyncapi.yaml", "docs/openapi.yaml"):
        assert f"]({document})" in text, document
    assert "](docs/live-page.png)" in text
