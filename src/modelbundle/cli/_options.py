"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def parse_pairs(values: tuple[str, ...], form: str = "KEY=VALUE") -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options as a dict; a value without ``=`` or a key is a usage error naming ``form``."""
    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not {form}")
        pairs[key] = text
    return pairs


def key_value_pairs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """A click callback for repeatable ``KEY=VALUE`` options (--label, --env)."""
    return parse_pairs(values)


def server_options(func: F) -> F:
    """The flags of ``ServeConfig``; every default is None so that env vars and defaults apply."""
    options = [
        click.option("--host", default=None, help="Interface to listen on. [default: 127.0.0.1]"),
        click.option("--port", type=int, default=None, help="Port to listen on; 0 picks a free one. [default: 3000]"),
        click.option("--workers", type=int, default=None, help="Worker processes sharing the port. [default: 1]"),
        click.option("--reload/--no-reload", default=None, help="Restart when a source file changes (development)."),
        click.option("--max-body-size", default=None, help="Largest request body, e.g. 10MB or 64MiB. [default: 100MiB]"),
        click.option(
            "--body-timeout", type=float, default=None,
            help="Seconds a request body may stall before a 408; also the grace before --body-min-rate. [default: 10]",
        ),
        click.option(
            "--body-min-rate", default=None,
            help="Bytes a second a body must average after --body-timeout, e.g. 1KiB; 0 for none. [default: 1KiB]",
        ),
        click.option("--max-header-size", default=None, help="Largest request line and headers before a 431. [default: 64KiB]"),
        click.option("--max-headers", type=int, default=None, help="Most header fields a request may have before a 431. [default: 100]"),
        click.option("--timeout", type=float, default=None, help="Seconds before a request gets a 504. [default: 60]"),
        click.option(
            "--graceful-timeout", type=float, default=None,
            help="Seconds a stopping server waits for accepted requests. [default: 30]",
        ),
        click.option("--max-concurrency", type=int, default=None, help="Requests in flight per worker before 503s. [default: 1024]"),
        click.option("--threads", type=int, default=None, help="Threads per worker for sync, non-batched APIs. [default: 4]"),
        click.option("--batching/--no-batching", default=None, help="Micro-batch batchable APIs. [default: on]"),
        click.option(
            "--step-batching/--no-step-batching", default=None,
            help="Let concurrent generations of an @openai.generate model share step calls. [default: on]",
        ),
        click.option(
            "--blas-threads", type=int, default=None,
            help="BLAS/OpenMP threads per worker. [default: CPUs / (2 x workers), at least 1]",
        ),
        click.option("--access-log/--no-access-log", default=None, help="Log every request. [default: on]"),
        click.option(
            "--log-format", type=click.Choice(["text", "json"]), default=None,
            help="json: one object per line. [default: text; json in the images]",
        ),
        click.option(
            "--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default=None,
            help="[default: info]",
        ),
        click.option("--sagemaker/--no-sagemaker", default=None, help="Also serve SageMaker's GET /ping and POST /invocations. [default: off]"),
        click.option("--default-api", default=None, help="The API POST /invocations calls when the request names none. [default: the first]"),
        click.option(
            "--model-dir", default=None,
            help="Load artifacts from this folder (an unpacked model.tar.gz of bundle export sagemaker) instead of the bundle.",
        ),
        click.option("--split/--no-split", default=None, help="Each service of a composed graph in its own process, over loopback HTTP. [default: off]"),
        click.option("--service", default=None, help="Serve only this service of a composed graph (dependencies from MODELBUNDLE_DEPENDENCY_<NAME>_URL)."),
        click.option(
            "--dependency-timeout", type=float, default=None,
            help="Seconds a call to a dependency served elsewhere may take before a 504. [default: 30]",
        ),
        click.option("--jobs/--no-jobs", default=None, help="Serve every API as durable jobs too (POST <route>/jobs). [default: on]"),
        click.option(
            "--jobs-dir", default=None,
            help="Folder of the SQLite job store (a volume in a container). [default: $MODELBUNDLE_HOME/jobs/<service>]",
        ),
        click.option("--jobs-url", default=None, help="postgresql://... : a job queue shared by several replicas, instead of --jobs-dir."),
        click.option(
            "--jobs-blobs", default=None,
            help="With --jobs-url: file:///path or s3://bucket/prefix for job bodies and results above 64 KiB.",
        ),
        click.option(
            "--job-lease", default=None,
            help="A worker's running jobs go back to the queue after it has not beaten this long, e.g. 30s. [default: 30s]",
        ),
        click.option("--job-max-attempts", type=int, default=None, help="Runs a job may start before it fails. [default: 3]"),
        click.option("--job-ttl", default=None, help="How long finished jobs are kept, e.g. 7d, 12h, 30m. [default: 7d]"),
        click.option("--job-concurrency", type=int, default=None, help="Jobs run at once per worker. [default: 4]"),
        click.option("--webhook-secret", default=None, help="Secret that signs job webhooks (HMAC-SHA256 of the body)."),
        *access_options(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def access_options() -> list[Callable[[F], F]]:
    """Who may call: API keys, CORS, rate limits (``runtime/_auth.py``)."""
    return [
        click.option(
            "--api-key-file", default=None,
            help="Accept only requests with one of these API keys: one KEY, or name:sha256-of-KEY, a line. "
            "Also MODELBUNDLE_API_KEYS=KEY1,KEY2.",
        ),
        click.option("--protect-docs/--no-protect-docs", default=None, help="Ask /docs and /openapi.json for an API key too. [default: open]"),
        click.option("--protect-metrics/--no-protect-metrics", default=None, help="Ask /metrics for an API key too. [default: open]"),
        click.option(
            "--cors-origin", multiple=True, callback=_none_if_empty,
            help="Let pages from this origin call the service (repeatable; * for any). [default: CORS off]",
        ),
        click.option("--rate-limit", default=None, help="Requests per API key (or client address) and worker, e.g. 10/s or 600/m."),
    ]


def _none_if_empty(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...] | None:
    """A repeatable option given no times is "not given", so its env var applies."""
    return values or None


def remote_options(func: F) -> F:
    """Options of commands that talk to a remote store."""
    func = click.option(
        "--insecure", is_flag=True, help="Allow plain HTTP to an OCI registry that is not on loopback."
    )(func)
    return click.option(
        "--endpoint-url", default=None, help="S3-compatible endpoint (also AWS_ENDPOINT_URL)."
    )(func)
