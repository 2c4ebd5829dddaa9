"""``bundle export lambda``: a bundle, its locked environment and a handler, as one Lambda zip."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...bundler import Reporter, StoredBundle, WheelCache, verify_record
from ...errors import ExportError
from ._bytecode import compile_bytecode
from ._entry import BUNDLE_DIR, HANDLER, HANDLER_MODULE, handler_source
from ._install import install_lock
from ._platform import LambdaRuntime, lambda_runtime
from ._slim import slim
from ._streams import check_export
from ._zip import ZipEntry, tree_files, write_zip

MIB = 1024 * 1024


@dataclass(frozen=True)
class LambdaLimits:
    """Lambda's deployment package quotas, in bytes."""

    #: a zip function, unpacked (layers included): past this Lambda refuses the function
    unzipped: int = 250 * MIB
    #: a zip uploaded directly with the function; larger ones must go through S3
    zipped_direct: int = 50 * MIB
    #: /tmp at most (EphemeralStorage), where referenced weights are fetched at cold start
    ephemeral: int = 10240 * MIB
    #: /tmp unless the function asks for more
    ephemeral_default: int = 512 * MIB


DEFAULT_LIMITS = LambdaLimits()


@dataclass(frozen=True)
class LambdaZip:
    """What ``export_lambda`` wrote."""

    path: Path
    runtime: LambdaRuntime
    handler: str
    files: int
    unzipped_size: int
    zipped_size: int
    #: ``.pyc`` files in the zip; 0 when the export ran on another Python than the runtime's
    bytecode_files: int = 0


def export_lambda(
    bundle: StoredBundle,
    output: Path,
    *,
    cache_dir: Path,
    arch: str = "x86_64",
    python: str | None = None,
    find_links: Sequence[Path] = (),
    reporter: Reporter | None = None,
    limits: LambdaLimits = DEFAULT_LIMITS,
    buffer_streams: bool = False,
) -> LambdaZip:
    """Write ``output``: a zip for a Lambda ``python`` runtime (default: the bundle's Python) on ``arch``.

    The zip holds ``modelbundle_handler.py`` (handler ``modelbundle_handler.handler``),
    the bundle under ``modelbundle_bundle/``, and the bundle's requirements.lock
    installed from wheels for the runtime's platform. When this Python is the
    runtime's, the modules outside the bundle also ship as unchecked-hash bytecode
    (``_bytecode.py``: all of it, or what fits), so cold starts do not compile them. The bundle's own files are
    left as RECORD lists them: the handler checks them at init and refuses any extra.
    The size limits are checked before anything is written; on any failure ``output``
    is left as it was. A streaming API is refused unless ``buffer_streams`` (then it
    answers with the whole stream at once); WebSocket APIs are left out (``_streams.py``).
    """
    reporter = reporter or Reporter(quiet=True)
    apis = [(api.name, api.streaming, api.websocket) for api in bundle.manifest.apis]
    for name in check_export(bundle.tag, apis, buffer_streams):
        reporter.warn(f"{name} is a WebSocket API, which Lambda cannot serve: the zip answers it with a 501 error")
    _check_weights(bundle, limits, reporter)
    bundle_python = bundle.manifest.python_minor
    runtime = lambda_runtime(python or bundle_python, arch)
    if runtime.python != bundle_python:
        reporter.warn(f"{bundle.tag} was built with Python {bundle_python}; the zip is for {runtime.identifier}")
    verify_record(bundle.path)
    links = [bundle.path / "env" / "wheels", *find_links]  # the wheel cache is passed as cache=, indexed by digest
    with tempfile.TemporaryDirectory(prefix="modelbundle-lambda-") as work:
        site = Path(work) / "site"
        site.mkdir()
        # fetched wheels stay in the shared cache, so the next export (and containerize) downloads none
        install_lock(
            bundle.path / "env" / "requirements.lock", site, runtime, links, reporter, cache=WheelCache(cache_dir / "wheels"),
        )
        freed = slim(site)  # first: it deletes caches and tests, and each pyc must match a shipped source
        entry = Path(work) / "entry"  # its own folder, so that _check_unique sees a distribution's clash
        entry.mkdir()
        (entry / f"{HANDLER_MODULE}.py").write_text(handler_source(buffer_streams=buffer_streams), encoding="utf-8")
        files = [*tree_files(site), *tree_files(bundle.path, BUNDLE_DIR), *tree_files(entry)]
        _check_unique(files)
        _check_size(files, bundle, runtime, limits)  # before compiling: bytecode is not why a zip is too big
        bytecode = compile_bytecode(runtime, [site, entry], reporter, analyse=[bundle.path / "src"])
        files = [*tree_files(site), *tree_files(bundle.path, BUNDLE_DIR), *tree_files(entry)]
        unzipped = sum(f.size for f in files)
        if bytecode and unzipped > limits.unzipped:
            # bytecode only speeds cold starts up: it never makes a zip too big, what fits of it goes in
            compiled = len(bytecode.pycs)
            dropped = bytecode.keep_within(limits.unzipped - (unzipped - bytecode.size), _cold_start_roots(bundle))
            reporter.warn(
                f"{dropped} of {compiled} modules are in the zip without bytecode (cold starts compile them): with all of "
                f"it the zip would be {_mib(unzipped)} unzipped, above Lambda's {_mib(limits.unzipped)}; what the handler, "
                f"the service and its models' frameworks import kept theirs"
            )
            files = [*tree_files(site), *tree_files(bundle.path, BUNDLE_DIR), *tree_files(entry)]
            unzipped = sum(f.size for f in files)
        reporter.info(f"{len(files)} files, {_mib(unzipped)} unzipped ({_mib(freed)} of caches, tests and stubs left out)")
        zipped = _write_atomically(files, output, reporter)
    if zipped > limits.zipped_direct:
        reporter.warn(
            f"{output} is {_mib(zipped)}, above the {_mib(limits.zipped_direct)} Lambda accepts in a direct upload; "
            f"upload it to S3 and create the function from there (aws lambda create-function --code S3Bucket=...,S3Key=...)"
        )
    return LambdaZip(output, runtime, HANDLER, len(files), unzipped, zipped, len(bytecode.pycs) if bytecode else 0)


def _cold_start_roots(bundle: StoredBundle) -> list[str]:
    """The modules a cold start imports by name: the handler, the service's module, its models' frameworks."""
    service_module = bundle.manifest.service.rpartition(":")[0]
    return [HANDLER_MODULE, service_module, *sorted({a.kind for a in bundle.manifest.artifacts})]


def _write_atomically(files: list[ZipEntry], output: Path, reporter: Reporter) -> int:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        with reporter.step(f"writing {output}..."):
            write_zip(files, partial)
        size = partial.stat().st_size
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


def _check_size(files: list[ZipEntry], bundle: StoredBundle, runtime: LambdaRuntime, limits: LambdaLimits) -> None:
    unzipped = sum(f.size for f in files)
    if unzipped > limits.unzipped:
        raise ExportError(
            f"{bundle.tag} for {runtime.identifier} is {_mib(unzipped)} unzipped, above Lambda's "
            f"{_mib(limits.unzipped)} limit for zip functions (largest: {_largest(files)}); "
            f"export it as a container image instead (bundle containerize {bundle.tag} --target lambda-image)"
        )


def _check_weights(bundle: StoredBundle, limits: LambdaLimits, reporter: Reporter) -> None:
    """Referenced weights are fetched into /tmp at cold start (``MODELBUNDLE_HOME=/tmp/modelbundle``), not zipped:
    refused past /tmp's largest size, and a warning past its default."""
    from ...weights import distinct_blobs, references

    refs = references(bundle.manifest)
    if not refs:
        return
    total = sum(blob.size for blob in distinct_blobs(refs))
    largest = max(refs, key=lambda ref: ref.size)
    if total > limits.ephemeral:
        raise ExportError(
            f"{bundle.tag} references {_mib(total)} of weights (largest: artifact '{largest.artifact}', {_mib(largest.size)}), "
            f"above the {_mib(limits.ephemeral)} of /tmp a Lambda function can have to fetch them into; "
            f"serve it from a container instead (bundle containerize {bundle.tag})"
        )
    if total > limits.ephemeral_default:
        reporter.warn(
            f"{bundle.tag} fetches {_mib(total)} of weights into /tmp at cold start, above Lambda's default "
            f"{_mib(limits.ephemeral_default)}: give the function EphemeralStorage Size={-(-total // MIB)} (MB) or more"
        )


def _check_unique(files: list[ZipEntry]) -> None:
    """A distribution that installs a top-level ``modelbundle_handler.py`` or ``modelbundle_bundle/``
    would be silently shadowed; refuse instead."""
    seen = Counter(f.name for f in files)
    clashes = sorted(name for name, count in seen.items() if count > 1)
    if clashes:
        raise ExportError(f"two files would be {clashes[0]} in the zip; a locked distribution uses a name the exporter needs")


def _largest(files: list[ZipEntry], count: int = 3) -> str:
    """The biggest top-level folders, e.g. ``scipy 94.0 MiB, numpy 31.2 MiB``."""
    sizes: Counter[str] = Counter()
    for f in files:
        sizes[f.name.split("/", 1)[0]] += f.size
    return ", ".join(f"{name} {_mib(size)}" for name, size in sizes.most_common(count))


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"

