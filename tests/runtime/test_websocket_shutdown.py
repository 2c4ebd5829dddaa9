"""SIGTERM with open WebSockets: they keep working through --graceful-timeout while new
connections are refused, then get close 1001, their generators stop, and the server exits 0."""

from __future__ import annotations

import json
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

GRACE_S = 4
WAIT_S = 30.0
STREAM = 200_000  # items 10 ms apart: it would run for over half an hour


def _ws(server, route: str, open_timeout: float = WAIT_S):
    return connect(server.url.replace("http://", "ws://", 1) + route, open_timeout=open_timeout, close_timeout=WAIT_S)


def _until_refused(server) -> None:
    """Try new sockets until one is refused (by the kernel, or a 503 from a draining worker)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            # longer than a SYN's first retry (1 s), shorter than the drain
            with _ws(server, "/shout", open_timeout=2.5):
                pass  # accepted: the signal is not handled yet
        except ConnectionRefusedError:
            return
        except InvalidStatus as exc:
            assert exc.response.status_code == 503
            return
        except TimeoutError:
            pytest.fail("a connection made after SIGTERM hung instead of being refused")
        except OSError:
            pass  # reset: it raced a worker closing its listener; try again
        time.sleep(0.02)
    pytest.fail("new sockets were still accepted 30 s after SIGTERM")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_open_sockets_then_closes_them_with_1001(serve_in_subprocess, tmp_path, workers):
    record = tmp_path / "record.txt"
    record.touch()
    args = ("--workers", workers, "--graceful-timeout", str(GRACE_S))
    with serve_in_subprocess("sockets.py:Sockets", *args, env={"MODELBUNDLE_TEST_RECORD": str(record)}) as server:
        with _ws(server, "/shout") as chat, _ws(server, "/count") as stream:
            chat.send("before")
            assert chat.recv(timeout=WAIT_S) == "BEFORE"
            stream.send(str(STREAM))
            assert json.loads(stream.recv(timeout=WAIT_S)) == 0

            server.proc.send_signal(signal.SIGTERM)
            _until_refused(server)

            # during the drain, both sockets still work
            chat.send("during the drain")
            assert chat.recv(timeout=WAIT_S) == "DURING THE DRAIN"
            items = [json.loads(stream.recv(timeout=WAIT_S)) for _ in range(5)]
            assert items == sorted(items) and items[0] > 0

            for ws in (chat, stream):
                with pytest.raises(ConnectionClosed) as caught:
                    while True:
                        ws.recv(timeout=WAIT_S)
                assert caught.value.rcvd is not None
                assert caught.value.rcvd.code == 1001
                assert caught.value.rcvd.reason == "the server is shutting down"

        assert server.wait() == 0, server.stderr
        assert f"finally {STREAM}" in record.read_text().splitlines()  # the generator was stopped, not abandoned
        assert "Traceback" not in server.stderr
