"""A TCP proxy that a test can cut and restore: a database or broker going away."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from churnwatch.sim.broker import EmbeddedBroker, free_port


class CuttableProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`cut` drops every connection.

    While cut, new connections are accepted and closed at once, which is how
    a server that went away looks to a client (a reset, not a hang).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port("127.0.0.1")
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._drop(s)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._open.clear()
        with self._lock:
            live = list(self._sockets)
        for sock in live:
            self._drop(sock)

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


def broker_behind_proxy(log: Path) -> tuple[EmbeddedBroker, CuttableProxy]:
    """An embedded broker (not yet started) that advertises a proxy, so every client uses it."""
    broker = EmbeddedBroker(log_path=log)
    proxy = CuttableProxy(broker.host, broker.port)
    broker.advertised_port = proxy.port
    return broker, proxy
