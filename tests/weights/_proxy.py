"""A TCP proxy on 127.0.0.1 that counts what a server sent, records the Range headers asked for, and can cut a transfer or refuse.

It forwards bytes untouched (HTTP/1.1, keep-alive included), so a client
talks to the real server (moto, the registry) through it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading

_RANGE = re.compile(rb"\r\nrange: *(bytes=[0-9-]+)", re.I)


class CountingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sent = 0  # bytes from the server to the client
        self.ranges: list[str] = []
        #: cut every connection once the server has sent this many bytes in all (None: never)
        self.cut_after: int | None = None
        #: cut only the connection that crosses ``cut_after``, then forward everything again
        self.cut_once = False
        #: close every new connection at once, as a server that cannot be reached
        self.refuse = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, downstream: bool) -> None:
        try:
            while data := source.recv(256 * 1024):
                with self._lock:
                    if downstream:
                        if self.cut_after is not None and self.sent + len(data) > self.cut_after:
                            data = data[: max(0, self.cut_after - self.sent)]
                            self.sent += len(data)
                            target.sendall(data)
                            if self.cut_once:
                                self.cut_after = None
                            raise OSError("cut")
                        self.sent += len(data)
                    else:
                        self.ranges += [m.decode() for m in _RANGE.findall(data)]
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
