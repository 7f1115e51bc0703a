"""Compile the hot, strictly typed layers with mypyc: ``python build_native.py``.

The modules of :data:`churnwatch.native.MODULES` are compiled under their installed
names (``churnwatch.features.state`` ...), from the mapped tree of symlinks that mypy
reads too (:mod:`tests.mapped_tree`), into ``build/native/``. ``churnwatch`` loads
them from there (:mod:`churnwatch.native`) unless ``CHURNWATCH_PURE=1``. Nothing is
done when the build is current; a build that cannot be made (no C compiler, a mypyc
error) leaves the pure-Python build in place, says so in one line and exits 0, so
that ``make demo`` and ``make test`` still run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

# the build reads the sources, never runs the compiled modules: no word on a stale build
os.environ["CHURNWATCH_PURE"] = "1"

from churnwatch import native
from tests.mapped_tree import build as mapped_tree


def compiler() -> str | None:
    """The C compiler Python's build would call, if it is installed."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def compile_into(out: Path, work: Path) -> None:
    """Run mypyc and the C compiler on the mapped tree; the extension files go to ``out``."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    tree = mapped_tree(work / "tree")
    os.chdir(tree)  # mypy reads the project's configuration and the sources from here
    paths = [str(native.source_of(m).relative_to(native.ROOT)) for m in native.MODULES]
    # one shared library: the modules call each other natively, not through Python
    library = native.LIBRARY.removesuffix("__mypyc")
    extensions = mypycify(
        [f"churnwatch/{path}" for path in paths], opt_level="3", group_name=library
    )
    # a Distribution, not setup(): setup() would read pyproject.toml as a project to build
    dist = Distribution({"name": "churnwatch-native", "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.build_lib, command.build_temp = str(out), str(work / "temp")
    dist.run_command("build_ext")


def main() -> int:
    """Build when the compiled modules are missing or older than their sources."""
    files, reason = native.check()
    if files:
        print(f"native build is current: {len(native.MODULES)} modules in {native.NATIVE_DIR}")
        return 0
    if compiler() is None:
        print("no C compiler: churnwatch runs pure Python (install gcc, then make native)")
        return 0
    print(f"compiling {len(native.MODULES)} modules with mypyc ({reason})", flush=True)
    with tempfile.TemporaryDirectory(prefix="churnwatch-native-") as tmp:
        staged = Path(tmp) / "native"
        log = Path(tmp) / "build.log"
        try:
            with log.open("w") as sink:
                os.dup2(sink.fileno(), 1)  # mypyc and gcc print much; keep it unless it fails
                os.dup2(sink.fileno(), 2)
                compile_into(staged, Path(tmp))
        except (Exception, SystemExit) as error:  # mypyc and distutils exit on errors
            os.dup2(_STDOUT, 1)
            os.dup2(_STDERR, 2)
            print(log.read_text()[-4000:], file=sys.stderr)
            print(f"mypyc build failed ({error!r}): churnwatch runs pure Python")
            return 0
        finally:
            os.dup2(_STDOUT, 1)
            os.dup2(_STDERR, 2)
            os.chdir(native.ROOT)
        sources = {m: native.digest(native.source_of(m)) for m in native.MODULES}
        manifest = {"suffix": native.SUFFIX, "sources": sources}
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        # replaced whole, so a failed build never leaves a half-new folder behind
        shutil.rmtree(native.NATIVE_DIR, ignore_errors=True)
        native.NATIVE_DIR.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, native.NATIVE_DIR)
    print(f"compiled {len(native.MODULES)} modules into {native.NATIVE_DIR}")
    return 0


_STDOUT, _STDERR = os.dup(1), os.dup(2)

if __name__ == "__main__":
    raise SystemExit(main())
