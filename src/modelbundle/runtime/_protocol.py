"""uvicorn's httptools protocol, with limits on request heads and a shutdown that drops no request.

- **Heads.** httptools has no limit of its own: a 100 MB header is parsed, on the event loop,
  while every other connection waits. Here a request line and headers above
  ``--max-header-size`` bytes, or with more than ``--max-headers`` fields, get a 431 at once
  and the connection is closed; at most one read past the limit is ever parsed.
- **Shutdown.** uvicorn closes every connection that has no request in progress, including
  one accepted a moment ago whose request is still on its way, which the client sees as a
  reset. Here such a connection is served one request (answered with ``Connection: close``);
  only connections that already had a request answered, idle between two, are closed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import socket
import struct
import sys
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: how long a connection accepted before the stop may take to send its first request
FIRST_REQUEST_GRACE_SECONDS = 2.0
#: after a 431, bytes still arriving are read and dropped for this long (and up to this many),
#: so that closing with unread data does not reset the connection before the client reads the 431
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 1 << 20


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head that is over a limit."""


class LimitedHttpProtocol(HttpToolsProtocol):
    """Subclassed per server by ``protocol_class`` with its limits."""

    max_header_size = 64 * 1024
    max_headers = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_parsed = 0
        self._head_fields = 0
        self._reading_head = False
        self._refused: str | None = None
        self._stopping = False

    # -- limits on the head --------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refused is not None:  # lingering after a 431: drop what is still coming
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_size + LINGER_MAX_BYTES:
                self.transport.close()
            return
        super().data_received(data)
        if self._reading_head and self._refused is None and not self.transport.is_closing():
            # counted only while the head is incomplete after this read: a read that ends the
            # head (and may carry a body) never counts, so at most one read is parsed past the limit
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_size:
                self._refuse(self._size_reason())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_bytes = 0
        self._head_parsed = 0
        self._head_fields = 0

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        if self._head_parsed > self.max_header_size:
            self._stop_parsing(self._size_reason())
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # the head's parsed bytes are exact, where the count per read misses the read that ends it
        self._head_parsed += len(name) + len(value) + 4  # ": " and CRLF
        self._head_fields += 1
        if self._head_fields > self.max_headers:
            self._stop_parsing(f"the request has more than {self.max_headers} header fields (--max-headers)")
        if self._head_parsed > self.max_header_size:
            self._stop_parsing(self._size_reason())
        super().on_header(name, value)

    def _stop_parsing(self, reason: str) -> None:
        self._refused = reason
        raise _HeadTooLarge  # httptools stops parsing; uvicorn then calls send_400_response

    def _size_reason(self) -> str:
        return f"the request line and headers are above the limit of {self.max_header_size} bytes (--max-header-size)"

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # the one request a stopping server still serves here

    def send_400_response(self, msg: str) -> None:
        if self._refused is not None:
            self._refuse(self._refused)
        else:
            super().send_400_response(msg)

    def _refuse(self, reason: str) -> None:
        """Answer 431 and close: stop writing now, stop reading after LINGER_SECONDS."""
        self._refused = reason
        self.logger.warning("431: %s", reason)
        body = json.dumps({"error": {"type": "request_header_fields_too_large", "message": reason}}).encode()
        head = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:  # pragma: no cover - TCP transports can always half-close
            self.transport.close()

    # -- graceful shutdown ---------------------------------------------------------------
    def shutdown(self) -> None:
        waiting_for_first = self.cycle is None
        request_on_its_way = self._reading_head and (self.cycle is None or self.cycle.response_complete)
        if (waiting_for_first or request_on_its_way) and self._refused is None:
            self._stopping = True
            self.loop.call_later(FIRST_REQUEST_GRACE_SECONDS, self._close_if_idle)
            return
        super().shutdown()

    def _close_if_idle(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()  # no request came, or only part of a head, too slowly


def protocol_class(max_header_size: int, max_headers: int) -> type[LimitedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type(
        "LimitedHttpProtocol",
        (LimitedHttpProtocol,),
        {"max_header_size": max_header_size, "max_headers": max_headers, "__module__": __name__},
    )


def accept_backlog(sockets: list[Any], protocol_factory: Any, loop: asyncio.AbstractEventLoop) -> list[Any]:
    """Accept every connection waiting in the listeners' queues (closing a listener resets them)."""
    pending = []
    for sock in sockets:
        sock.setblocking(False)
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # closed already (by another path): nothing is waiting on it
                break
            conn.setblocking(False)
            pending.append(loop.connect_accepted_socket(protocol_factory, conn))
    return pending


#: Linux's SO_ATTACH_FILTER, and a classic BPF program (struct sock_filter: code, jt, jf, k) that drops
#: a TCP segment with SYN set and ACK clear (a new connection attempt) and keeps every other one: the ACK
#: that completes a handshake begun before the filter must still reach the listener, or that connection
#: stays half-open until the close resets it. A TCP socket's filter sees the segment from its TCP header.
_SO_ATTACH_FILTER = 26
_DROP_NEW_CONNECTIONS = b"".join([
    struct.pack("HBBI", 0x30, 0, 0, 13),  # ldb [13]: the flags byte
    struct.pack("HBBI", 0x54, 0, 0, 0x12),  # and SYN|ACK
    struct.pack("HBBI", 0x15, 0, 1, 0x02),  # SYN alone? then the next instruction, else the one after
    struct.pack("HBBI", 0x06, 0, 0, 0),  # drop
    struct.pack("HBBI", 0x06, 0, 0, 0xFFFFFFFF),  # keep
])
#: how long handshakes begun before the filter have to complete and join the queue (a few round trips)
HANDSHAKE_GRACE_S = 0.1


def stop_new_connections(sock: socket.socket) -> None:
    """Make the kernel drop new connection attempts on a listener, keeping those already queued.

    Closing a listener resets the connections queued on it, which their clients already count
    as accepted; with this filter, nothing joins the queue once it is drained, and a client
    that tries meanwhile retries its SYN and then finds the port closed (refused, not reset).
    Linux only; elsewhere the drain just closes the listener quickly.
    """
    if not sys.platform.startswith("linux"):
        return
    program = ctypes.create_string_buffer(_DROP_NEW_CONNECTIONS)
    fprog = struct.pack("HL", len(_DROP_NEW_CONNECTIONS) // 8, ctypes.addressof(program))  # struct sock_fprog {len; *filter}
    # closed already, or a kernel without socket filters: the drain still runs
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
