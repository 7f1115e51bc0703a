"""`churnwatch demo` as a user runs it: a taken port, and serving after the history."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cli_helpers import clean_env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(port: int, wait_s: float = 120.0) -> int:
    """The status of ``/health`` once the worker's web server listens."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
                return int(r.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_the_demo_says_its_port_is_taken_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "churnwatch", "demo", "--events", "100"],
            cwd=tmp_path,
            env=clean_env(CHURNWATCH_WEB_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"error: port {port} on 127.0.0.1 is taken" in out.stderr
    assert "CHURNWATCH_WEB_PORT" in out.stderr
    # nothing was started: no broker log, no link to another server
    assert "retention worklist" not in out.stderr
    assert not (tmp_path / "churnwatch-data" / "broker.log").exists()


@pytest.mark.kafka
def test_the_demo_says_when_the_history_is_played_and_serves_until_ctrl_c(
    tmp_path: Path,
) -> None:
    port = _free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "churnwatch",
            "demo",
            "--days",
            "60",
            "--customers",
            "40",
            "--rate",
            "20000",
        ],
        cwd=tmp_path,
        env=clean_env(CHURNWATCH_WEB_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stderr is not None and demo.stdout is not None
        seen = []
        for line in demo.stderr:
            seen.append(line)
            if "the simulated history is played" in line:
                break
        else:
            pytest.fail("the demo ended without saying so:\n" + "".join(seen)[-3000:])
        assert re.search(r"the simulated history is played \(\d[\d,]* records\)", line)
        assert f"the worklist stays open at http://127.0.0.1:{port}/login?token=" in line
        # live now: the worker serves (once it is up) and the demo goes on
        assert _health(port) == 200
        assert demo.poll() is None
        # the example CRM works the tasks, playing the customers a contact wins back
        assert (tmp_path / "churnwatch-data" / "crm.log").exists()
    finally:
        demo.send_signal(signal.SIGINT)
        stdout, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 0, stderr[-3000:]
    assert stdout.rstrip().endswith("stopped")
    assert "Traceback" not in stderr
