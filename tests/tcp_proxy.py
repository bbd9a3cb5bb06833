"""A TCP proxy between the viewer and a real broker that a test controls: cut the link, or make it half-open.

``cut()`` closes every connection through it (a flapping link); ``freeze()`` keeps the sockets open but
stops forwarding in both directions (a half-open link: a cable pulled behind a switch, a NAT that forgot
the flow), ``thaw()`` forwards again.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target`` on a thread of its own."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._frozen = threading.Event()
        self._stop = threading.Event()
        self.accepted = 0
        self._cut_request: bool | None = None  # a cut asked for: reset (True) or orderly close (False)
        self._cut_done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            if self._cut_request is not None:
                self._do_cut(selector, self._cut_request)
                self._cut_request = None
                self._cut_done.set()
            for key, _ in selector.select(0.02):
                if key.data is None:
                    self._accept(selector)
                elif not self._frozen.is_set():
                    self._forward(selector, key.fileobj, key.data)  # type: ignore[arg-type]
            if self._frozen.is_set():
                self._stop.wait(0.02)  # the sockets stay readable while frozen: do not spin on them
            with self._lock:
                live = [p for p in self._pairs if p[0].fileno() >= 0 and p[1].fileno() >= 0]
                for pair in self._pairs:
                    if pair not in live:
                        for sock in pair:
                            with contextlib.suppress(KeyError, ValueError, OSError):
                                selector.unregister(sock)
                            sock.close()
                self._pairs = live
        selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            client.close()
            return
        client.setblocking(False)
        upstream.setblocking(False)
        with self._lock:
            self._pairs.append((client, upstream))
            self.accepted += 1
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)

    def _forward(self, selector: selectors.BaseSelector, source: socket.socket, sink: socket.socket) -> None:
        try:
            data = source.recv(65536)
            if data:
                sink.sendall(data)
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        for sock in (source, sink):  # one side closed: close both
            with contextlib.suppress(KeyError, ValueError, OSError):
                selector.unregister(sock)
            sock.close()

    def cut(self, reset: bool = True) -> None:
        """Drop every connection through the proxy: a reset like a failing network, or an orderly close."""
        self._cut_done.clear()
        self._cut_request = reset
        self._cut_done.wait(5)

    def _do_cut(self, selector: selectors.BaseSelector, reset: bool) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(sock)
                with contextlib.suppress(OSError):
                    if reset:  # linger 0: close() sends RST, as a router or a dying link would
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    else:
                        sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def freeze(self) -> None:
        """Stop forwarding, keep the sockets: a half-open link."""
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def close(self) -> None:
        self.cut()
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
