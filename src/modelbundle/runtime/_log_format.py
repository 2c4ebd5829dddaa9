"""The two log formats, ``--log-format text|json``, for the server's lines and the access log.

text: ``TIME LEVEL LOGGER [PID] MESSAGE``, the access line as uvicorn wrote it
(``CLIENT - "METHOD PATH HTTP/1.1" STATUS``), so existing log parsers keep working.
json: one object per line, for log collectors; the server's lines written while a
request is served carry its request and trace ids, as its access line does.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from typing import Literal

from ._log_context import RequestRecord, current_request

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(process)d] %(message)s"
#: the access log's logger name in both formats (the text line is uvicorn's, under uvicorn's name)
ACCESS_LOGGER_TEXT = "uvicorn.access"
ACCESS_LOGGER_JSON = "modelbundle.access"


def server_formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


class JsonFormatter(logging.Formatter):
    """A server log record as one JSON object: time, level, logger, message, pid, request and trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        request = current_request()
        entry: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "request_id": request.known_request_id() if request is not None else "",
            "trace_id": request.trace_id if request is not None else "",
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["error"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def iso_time(seconds: float) -> str:
    """UTC, millisecond precision: 2026-12-06T15:31:51.123Z."""
    whole = int(seconds)
    return f"{_utc_second(whole)}.{int((seconds - whole) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _utc_second(whole: int) -> str:
    # a busy server logs thousands of lines within one second: format that second once
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


@functools.lru_cache(maxsize=4)
def _local_second(whole: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole))


def access_text(record: RequestRecord, pid: int) -> str:
    """The line uvicorn's access log wrote, under the server's text format."""
    scope = record.scope
    client = scope.get("client")
    client_addr = "%s:%d" % tuple(client) if client else ""  # noqa: UP031 - uvicorn's exact rendering
    path = _path_with_query(record)
    if scope.get("type") == "websocket":
        request_line = f"WebSocket {path}"
    else:
        request_line = f"{scope.get('method', '')} {path} HTTP/{scope.get('http_version', '1.1')}"
    whole = int(record.time)
    asctime = f"{_local_second(whole)},{int((record.time - whole) * 1000):03d}"
    return f'{asctime} INFO    {ACCESS_LOGGER_TEXT} [{pid}] {client_addr} - "{request_line}" {record.status}\n'


def access_json(record: RequestRecord, pid: int) -> str:
    """One JSON object, built by hand (json.dumps only for strings that need escaping): it runs per request."""
    scope = record.scope
    client = scope.get("client")
    method, path, status = scope.get("method", "WebSocket"), scope.get("path", ""), record.status
    api, batch_size = record.api, record.batch_size
    return (
        f'{{"time": "{iso_time(record.time)}", "level": "info", "logger": "{ACCESS_LOGGER_JSON}", '
        f'"message": {_string(f"{method} {path} {status}")}, "pid": {pid}, '
        f'"request_id": {_string(record.request_id)}, "trace_id": {_string(record.trace_id)}, '
        f'"method": {_string(method)}, "path": {_string(path)}, '
        f'"query": {_string(scope.get("query_string", b"").decode("latin-1"))}, '
        f'"status": {status}, "duration_ms": {record.duration * 1000:.3f}, "bytes": {record.bytes}, '
        f'"api": {"null" if api is None else _string(api)}, '
        f'"batch_size": {"null" if batch_size is None else batch_size}, '
        f'"client": {_string(f"{client[0]}:{client[1]}" if client else "")}}}\n'
    )


#: printable ASCII but the quote and the backslash: a JSON string as it stands
_PLAIN = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*").fullmatch


def _string(value: str) -> str:
    return f'"{value}"' if _PLAIN(value) else json.dumps(value, ensure_ascii=False)


def _path_with_query(record: RequestRecord) -> str:
    scope = record.scope
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("path", "")
    query = scope.get("query_string", b"")
    if query:
        path = f"{path}?{query.decode('ascii', 'replace')}"
    return path.replace('"', "%22")  # type: ignore[no-any-return]
