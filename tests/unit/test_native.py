"""The build that runs is the one expected: compiled where built, pure when asked.

``make test`` runs this file twice: on the compiled build, and with ``CHURNWATCH_PURE=1``.
Under ``CI=true`` a missing or stale compiled build fails here rather than letting the
suite pass on pure Python alone.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from churnwatch import native
from tests.cli_helpers import clean_env


def _modules() -> list:
    return [importlib.import_module(name) for name in native.MODULES]


def test_the_modules_run_as_the_build_says() -> None:
    if native.pure_requested():
        assert native.BUILD == "pure"
        assert not any(native.is_compiled(module) for module in _modules())
        return
    if native.BUILD != "compiled":
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI expects the compiled build (make native): {native.REASON}")
        pytest.skip(f"pure Python: {native.REASON}")
    compiled = [m.__name__ for m in _modules() if native.is_compiled(m)]
    assert compiled == list(native.MODULES)
    # a native class: its instances have no __dict__ and take only their declared types
    from churnwatch.features.state import CustomerState

    with pytest.raises(TypeError):
        CustomerState(customer_id=42)  # type: ignore[arg-type]


def test_churnwatch_pure_selects_the_source_in_a_new_process() -> None:
    code = (
        "import json, churnwatch.features.state as s\n"
        "from churnwatch import native\n"
        "print(json.dumps([native.BUILD, native.is_compiled(s), s.__file__]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(CHURNWATCH_PURE="1"),
        capture_output=True,
        text=True,
        check=True,
    )
    build, compiled, source = json.loads(done.stdout)
    assert (build, compiled) == ("pure", False)
    assert Path(source) == native.source_of("churnwatch.features.state")


def _manifest(tmp_path: Path, sources: dict[str, str]) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"suffix": native.SUFFIX, "sources": sources}))
    return path


def test_a_build_older_than_a_source_is_not_loaded(tmp_path: Path) -> None:
    sources = {m: native.digest(native.source_of(m)) for m in native.MODULES}
    sources["churnwatch.engine.lanes"] = "0" * 64
    files, reason = native.check(_manifest(tmp_path, sources))
    assert files == {}
    assert reason.startswith("engine/lanes.py changed since it was compiled")


def test_a_current_manifest_without_its_extension_files_is_not_loaded(tmp_path: Path) -> None:
    sources = {m: native.digest(native.source_of(m)) for m in native.MODULES}
    files, reason = native.check(_manifest(tmp_path, sources))
    assert files == {}
    assert reason.startswith("missing ") and native.SUFFIX in reason


def test_no_manifest_means_the_pure_build(tmp_path: Path) -> None:
    assert native.check(tmp_path / "none.json") == ({}, "no compiled build (make native)")


def test_an_unreadable_manifest_means_the_pure_build(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json")
    files, reason = native.check(manifest)
    assert files == {} and reason.startswith(f"unreadable {manifest}")
