"""Which build of the hot layers runs: compiled with mypyc, or the pure-Python source.

``build_native.py`` compiles :data:`MODULES` with mypyc into ``build/native/`` (git-ignored)
and writes a manifest of the sources it compiled. :func:`install`, called when
``churnwatch`` is first imported, puts a finder in front of the import system that loads
those modules from their extension files. The source stays the pure fallback and the
reference: it runs when ``CHURNWATCH_PURE=1``, when nothing was compiled, and when a source
changed since it was compiled (so an edit is never shadowed by a stale build).
:data:`BUILD` says which one runs; :data:`REASON` why.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

#: the plain, strictly typed modules of the fold, the timeline and the alert policy
MODULES: tuple[str, ...] = (
    "churnwatch.features.state",
    "churnwatch.features.row",
    "churnwatch.features.tier",
    "churnwatch.features.lifecycle",
    "churnwatch.features.segments",
    "churnwatch.engine.timeline",
    "churnwatch.engine.lanes",
    "churnwatch.engine.customer",
    "churnwatch.alerts.policy",
    "churnwatch.models.reasons",
    # not models.rule: RuleScorer is subclassed, and Python cannot subclass a compiled class
)
#: mypyc's group: the one shared library that holds the code of every module above
LIBRARY = "churnwatch_native__mypyc"
ROOT = Path(__file__).resolve().parents[1]
NATIVE_DIR = ROOT / "build" / "native"
MANIFEST = NATIVE_DIR / "manifest.json"
#: the suffix of this interpreter's extension modules (``.cpython-311-x86_64-linux-gnu.so``)
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

#: ``"compiled"`` or ``"pure"``: what :func:`install` chose
BUILD = "pure"
#: why, in a few words
REASON = "not installed"


def source_of(module: str) -> Path:
    """The source file of a module of :data:`MODULES` in this checkout."""
    _, leaf, name = module.split(".")
    return ROOT / leaf / f"{name}.py"


def digest(path: Path) -> str:
    """The SHA-256 of a file: what the manifest records of each compiled source."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(manifest: Path = MANIFEST) -> tuple[dict[str, Path], str]:
    """The extension file of each compiled module, or nothing and why not.

    The manifest must name this interpreter's suffix and every module of
    :data:`MODULES`, each with the digest of its source as it is now.
    """
    if not manifest.is_file():
        return {}, "no compiled build (make native)"
    try:
        built = json.loads(manifest.read_text())
    except (OSError, ValueError) as error:
        return {}, f"unreadable {manifest}: {error}"
    if built.get("suffix") != SUFFIX:
        return {}, f"compiled for {built.get('suffix')}, not {SUFFIX}"
    sources: dict[str, str] = built.get("sources", {})
    for module in MODULES:
        source = source_of(module)
        if sources.get(module) != digest(source):
            return {}, f"{source.relative_to(ROOT)} changed since it was compiled (make native)"
    folder = manifest.parent
    files = {m: folder.joinpath(*m.split(".")).with_suffix(SUFFIX) for m in (*MODULES, LIBRARY)}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        return {}, f"missing {missing[0]}"
    return files, f"compiled by mypyc into {folder}"


class NativeFinder:
    """A meta path finder that loads the compiled modules from their extension files.

    It goes before the editable install's finder, which would find the sources.
    """

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """The spec of a compiled module (an extension module's loader), else ``None``."""
        file = self.files.get(fullname)
        return None if file is None else importlib.util.spec_from_file_location(fullname, file)


def pure_requested() -> bool:
    """Whether ``CHURNWATCH_PURE`` asks for the pure-Python build."""
    return os.environ.get("CHURNWATCH_PURE", "").strip().lower() not in ("", "0", "false", "no")


def install() -> str:
    """Load the compiled modules when they fit the sources; return :data:`BUILD`.

    A build that is there but does not fit (a source changed since, another
    Python) is reported on stderr: the process runs other code than it was
    built to run. No build at all is silent: ``make native`` said why.
    """
    global BUILD, REASON
    if any(isinstance(finder, NativeFinder) for finder in sys.meta_path):
        return BUILD
    if pure_requested():
        BUILD, REASON = "pure", "CHURNWATCH_PURE is set"
        return BUILD
    files, REASON = check()
    if not files:
        BUILD = "pure"
        if MANIFEST.is_file():
            print(f"churnwatch: running pure Python: {REASON}", file=sys.stderr)
        return BUILD
    sys.meta_path.insert(0, NativeFinder(files))
    BUILD = "compiled"
    return BUILD


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from an extension file rather than its source."""
    spec = module.__spec__
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
