"""The two log formats, ``--log-format text|json``, for the server's lines and the access log.

text: ``TIME LEVEL LOGGER [PID] MESSAGE``, the access line as uvicorn wrote it
(``CLIENT - "METHOD PATH HTTP/1.1" STATUS``), so existing log parsers keep working.
json: one object per line, for log collectors; the server's lines written while a
request is served carry its request and trace ids, as its access line does.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
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
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
    seconds = int(record.time)
    asctime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) + ",%03d" % ((record.time - seconds) * 1000)  # noqa: UP031
    return f'{asctime} INFO    {ACCESS_LOGGER_TEXT} [{pid}] {client_addr} - "{request_line}" {record.status}\n'


def access_json(record: RequestRecord, pid: int) -> str:
    scope = record.scope
    client = scope.get("client")
    entry = {
        "time": iso_time(record.time),
        "level": "info",
        "logger": ACCESS_LOGGER_JSON,
        "message": f"{scope.get('method', 'WebSocket')} {scope.get('path', '')} {record.status}",
        "pid": pid,
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "method": scope.get("method", "WebSocket"),
        "path": scope.get("path", ""),
        "query": scope.get("query_string", b"").decode("latin-1"),
        "status": record.status,
        "duration_ms": round(record.duration * 1000, 3),
        "bytes": record.bytes,
        "api": record.api,
        "batch_size": record.batch_size,
        "client": f"{client[0]}:{client[1]}" if client else "",
    }
    return json.dumps(entry, ensure_ascii=False) + "\n"


def _path_with_query(record: RequestRecord) -> str:
    scope = record.scope
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("path", "")
    query = scope.get("query_string", b"")
    if query:
        path = f"{path}?{query.decode('ascii', 'replace')}"
    return path.replace('"', "%22")  # type: ignore[no-any-return]
