"""uvicorn's WebSocket protocol (websockets' sans-I/O implementation), with a graceful shutdown.

uvicorn's own shutdown closes every open socket at once with 1012 ("service restart"),
before the graceful timeout even starts. Here an open socket is left to the app
(``_websocket.py``), which lets its conversation go on for ``--graceful-timeout`` and then
closes it with 1001; uvicorn meanwhile waits for it like for any open connection. A
handshake still in the app's hands is answered by the app (a 503 while draining).
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

#: keepalive: a ping every PING_INTERVAL_S seconds; no pong within PING_TIMEOUT_S closes the
#: socket (1011), and the API sees the client leave (uvicorn's defaults, named here)
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 20.0


class GracefulWebSocketProtocol(WebSocketsSansIOProtocol):
    def shutdown(self) -> None:
        if self.close_sent or self.disconnected:  # closing already: as uvicorn does
            super().shutdown()
        # else the app closes it, at the end of the graceful timeout at the latest
