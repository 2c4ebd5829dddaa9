"""``ServeConfig``: every server setting, resolved once (flag > MODELBUNDLE_* env > default)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ServeError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_WORKERS = 1
DEFAULT_MAX_BODY_SIZE = 100 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
DEFAULT_GRACEFUL_TIMEOUT = 30.0
DEFAULT_MAX_CONCURRENCY = 1024
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_BODY_MIN_RATE = 1024
DEFAULT_MAX_HEADER_SIZE = 64 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_THREADS = 4
DEFAULT_JOB_MAX_ATTEMPTS = 3
DEFAULT_JOB_TTL = 7 * 24 * 3600.0
DEFAULT_JOB_LEASE = 30.0
DEFAULT_JOB_CONCURRENCY = 4
DEFAULT_DEPENDENCY_TIMEOUT = 30.0
ENV_PREFIX = "MODELBUNDLE_"
#: what --blas-threads sets; any of them already in the environment turns the default off
MATH_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_size(value: str | int) -> int:
    """``"10MB"``, ``"512KiB"`` or ``1048576`` -> bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"not a size: {value!r} (try 10MB, 512KiB or a number of bytes)")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    if unit.endswith("ib"):
        factor = 1024 ** "bkmgt".index(unit[0])
    else:
        factor = _UNITS[unit.rstrip("b") if unit != "b" else "b"]
    return int(number * factor)


def parse_duration(value: str | float) -> float:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"1.5s"`` or a number of seconds -> seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (try 7d, 12h, 30m or a number of seconds)")
    return float(match.group(1)) * _SECONDS[(match.group(2) or "").lower()]


class ServeConfig(BaseModel):
    """How to serve: the CLI flag, the env var ``MODELBUNDLE_<FIELD>`` and the field share a name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    workers: int = Field(default=DEFAULT_WORKERS, ge=1)
    reload: bool = False
    #: bodies above this many bytes get a 413
    max_body_size: int = Field(default=DEFAULT_MAX_BODY_SIZE, ge=1)
    #: a body that stalls this many seconds is answered 408 (also the grace before --body-min-rate applies)
    body_timeout: float = Field(default=DEFAULT_BODY_TIMEOUT, gt=0)
    #: bytes a second a body must average once --body-timeout has passed, else 408; 0: no minimum
    body_min_rate: int = Field(default=DEFAULT_BODY_MIN_RATE, ge=0)
    #: request line and headers above this many bytes get a 431
    max_header_size: int = Field(default=DEFAULT_MAX_HEADER_SIZE, ge=1024)
    #: requests with more header fields get a 431
    max_headers: int = Field(default=DEFAULT_MAX_HEADERS, ge=1)
    #: seconds before a request is answered 504
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    #: seconds a stopping worker waits for accepted requests to finish
    graceful_timeout: float = Field(default=DEFAULT_GRACEFUL_TIMEOUT, ge=0)
    #: requests handled at once per worker; more get a 503
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1)
    #: threads per worker that run sync, non-batched APIs
    threads: int = Field(default=DEFAULT_THREADS, ge=1)
    #: False runs batchable APIs one request per call (for debugging and benchmarks)
    batching: bool = True
    #: False makes every step call of an ``@openai.generate`` model carry one sequence (for benchmarks)
    step_batching: bool = True
    #: threads per worker for BLAS/OpenMP math (numpy, scikit-learn, torch); default: half
    #: the CPUs divided among the workers, so math threads leave room for the event loops.
    #: None leaves OMP_NUM_THREADS & co. as the environment sets them.
    blas_threads: int | None = Field(default=None, ge=1)
    access_log: bool = True
    #: text: the human-readable lines; json: one object per line (the images set MODELBUNDLE_LOG_FORMAT=json)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    #: also serve SageMaker's GET /ping and POST /invocations (``_sagemaker.py``); the server
    #: then accepts connections while setup() runs, so /ping answers 503 at once instead of hanging
    sagemaker: bool = False
    #: the API POST /invocations calls when the request names none (default: the first declared)
    default_api: str | None = None
    #: load the artifacts from this folder (an unpacked ``bundle export sagemaker`` model.tar.gz,
    #: e.g. /opt/ml/model) instead of from the bundle; names and kinds must match the bundle's
    model_dir: str | None = None
    #: every API can also be run as a durable job (POST <route>/jobs; runtime/jobs/)
    jobs: bool = True
    #: the SQLite job store's folder; default $MODELBUNDLE_HOME/jobs/<service name>
    jobs_dir: str | None = None
    #: postgresql://... puts the job queue on PostgreSQL, shared by several replicas (instead of --jobs-dir)
    jobs_url: str | None = Field(default=None, repr=False)
    #: with --jobs-url: bodies and results above 64 KiB go to this blob store (file:///path, s3://bucket/prefix)
    #: instead of the database
    jobs_blobs: str | None = None
    #: seconds without a heartbeat after which a worker's or replica's running jobs go back to the queue
    job_lease: float = Field(default=DEFAULT_JOB_LEASE, ge=1)
    #: runs a job may start before it is failed (a server dying while it ran spends one)
    job_max_attempts: int = Field(default=DEFAULT_JOB_MAX_ATTEMPTS, ge=1)
    #: seconds a finished job and its result are kept (flags take 7d, 12h, 30m)
    job_ttl: float = Field(default=DEFAULT_JOB_TTL, gt=0)
    #: jobs run at once per worker
    job_concurrency: int = Field(default=DEFAULT_JOB_CONCURRENCY, ge=1)
    #: signs webhook bodies (HMAC-SHA256)
    webhook_secret: str | None = Field(default=None, repr=False)
    # -- composition (``depends``; ``_composition/``) --
    #: run each service of the graph in its own process, calling each other over loopback HTTP
    split: bool = False
    #: serve only this service of the graph; its dependencies' URLs come from MODELBUNDLE_DEPENDENCY_<NAME>_URL
    service: str | None = None
    #: seconds a call to a dependency served elsewhere may take before the caller answers 504
    dependency_timeout: float = Field(default=DEFAULT_DEPENDENCY_TIMEOUT, gt=0)
    # -- who may call (``_auth.py``) --
    #: a file of accepted API keys, one a line: KEY or name:sha256-of-KEY
    api_key_file: str | None = None
    #: accepted API keys (MODELBUNDLE_API_KEYS, comma-separated; no flag, so no key shows in `ps`)
    api_keys: tuple[str, ...] = Field(default=(), repr=False)
    #: ask /docs and /openapi.json for a key too
    protect_docs: bool = False
    #: ask /metrics for a key too
    protect_metrics: bool = False
    #: origins whose pages may call the service (``*``: any); none turns CORS off
    cors_origin: tuple[str, ...] = ()
    #: requests per caller (API key, else client address) and worker: N/s or N/m
    rate_limit: str | None = None

    @field_validator("max_body_size", "body_min_rate", "max_header_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("api_keys", "cors_origin", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            from ._rate_limit import parse_rate

            parse_rate(value)
        return value

    @field_validator("job_ttl", "job_lease", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @classmethod
    def resolve(cls, flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ServeConfig:
        """Merge flags (None means not given) over ``MODELBUNDLE_*`` env vars over defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in cls.model_fields:
            env_name = ENV_PREFIX + name.upper()
            if flags.get(name) is not None:
                values[name], sources[name] = flags[name], "--" + name.replace("_", "-")
            elif env.get(env_name, "") != "":
                # pydantic parses "1"/"true"/"yes"/"on" and "0"/"false"/... and rejects a typo, naming the variable
                values[name], sources[name] = env[env_name], env_name
        unknown = set(flags) - set(cls.model_fields)
        if unknown:
            raise ServeError(f"unknown serve options: {sorted(unknown)}")
        try:
            config = cls(**values)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = str(error["loc"][0]) if error["loc"] else "?"
            raise ServeError(f"{sources.get(field, field)}: {error['msg']}") from None
        if config.reload and config.workers > 1:
            raise ServeError("--reload and --workers > 1 cannot be combined; reload runs one worker")
        if config.split and config.service is not None:
            raise ServeError("--split and --service cannot be combined: --split serves every service, --service one of them")
        if config.split and config.reload:
            raise ServeError("--split and --reload cannot be combined")
        if config.jobs_dir is not None and config.jobs_url is not None:
            raise ServeError("--jobs-dir and --jobs-url cannot be combined: the queue is in a folder (SQLite) or on PostgreSQL")
        if config.jobs_blobs is not None and config.jobs_url is None:
            raise ServeError("--jobs-blobs goes with --jobs-url: a SQLite job store keeps large payloads in its own folder")
        if config.api_key_file is not None or config.api_keys:
            from ._api_keys import load_keys

            load_keys(config.api_key_file, config.api_keys)  # a missing or malformed key file fails here, once
        if config.blas_threads is None and not any(name in env for name in MATH_THREAD_VARIABLES):
            config = config.model_copy(update={"blas_threads": max(1, (os.cpu_count() or 1) // (2 * config.workers))})
        return config
