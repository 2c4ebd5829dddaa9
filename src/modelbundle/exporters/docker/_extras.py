"""Requirements an image target adds to the bundle's lock (``awslambdaric`` for ``--target lambda-image``).

They are resolved on the host, for the image's platform and Python, with every
pin of the bundle's lock as a constraint (an extra never moves a locked
version), by ``pip install --dry-run --report``. Each distribution the lock
lacks becomes a pin with the sha256 of the exact wheel pip chose, so the image
lock (the bundle's lock plus these pins) installs hash-checked, in the same
venv layer, like the rest. Resolutions are cached by their inputs: a warm
containerize asks no index.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name

from ...bundler import Reporter
from ...bundler._lock import FAST_FAIL_PIP_ARGS, _last_lines, _pip_env
from ...bundler._lockfile import read_lock
from ...errors import ExportError
from ._platform import ImagePlatform
from ._wheels import WheelCache

#: bumped when the cached resolution's form changes
_CACHE_FORMAT = 1


def resolve_extras(
    requirements: Sequence[str],
    lock_file: Path,
    platform: ImagePlatform,
    cache: WheelCache,
    reporter: Reporter,
    *,
    offline: bool = False,
) -> list[str]:
    """Lock entries (``name==version --hash=sha256:...``) for what ``requirements`` add to the lock; [] if nothing."""
    if not requirements:
        return []
    locked = {dist.name: dist for dist in read_lock(lock_file)}
    constraints = "".join(f"{dist.pin}\n" for dist in locked.values())
    key = hashlib.sha256(
        json.dumps([_CACHE_FORMAT, sorted(requirements), constraints, platform.docker, platform.python_version]).encode()
    ).hexdigest()[:32]
    cached = cache.directory.parent / "image-extras" / f"{key}.json"
    try:
        entries: list[str] = json.loads(cached.read_text())
        return entries
    except (OSError, ValueError):
        pass
    with reporter.step(f"resolving {', '.join(requirements)} for {platform.docker}, Python {platform.python_version}..."):
        report = _pip_report(requirements, constraints, platform, cache, offline)
    entries = []
    for item in report:
        name = canonicalize_name(item["metadata"]["name"])
        version = item["metadata"]["version"]
        if name in locked:
            continue  # already in the image (the constraints kept its version)
        entries.append(f"{name}=={version} --hash=sha256:{_wheel_sha256(item)}")
    entries.sort()
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".extras-", dir=cached.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(entries, handle)
    os.replace(tmp, cached)
    return entries


def image_lock_text(bundle_lock: Path, extras: Sequence[str], target: str) -> str:
    """The bundle's lock, then the target's pins (one entry per line, as pip reads them)."""
    text = bundle_lock.read_text()
    if not extras:
        return text
    return text.rstrip("\n") + f"\n# added for --target {target} (resolved with the lines above as constraints)\n" + "".join(
        f"{entry}\n" for entry in extras
    )


def _pip_report(
    requirements: Sequence[str], constraints: str, platform: ImagePlatform, cache: WheelCache, offline: bool
) -> list[dict[str, Any]]:
    cache.directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="extras-") as scratch:
        work = Path(scratch)
        (work / "constraints.txt").write_text(constraints)
        command = [
            # not --quiet: on a conflict, pip says which pins caused it only at its normal verbosity
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--report", str(work / "report.json"), "--target", str(work / "target"), *FAST_FAIL_PIP_ARGS,
            *platform.pip_args(), "--find-links", str(cache.directory), "-c", str(work / "constraints.txt"),
            *(["--no-index"] if offline else []), *requirements,
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=_pip_env())
        if result.returncode != 0:
            where = "in the wheel cache (offline)" if offline else "in the wheel cache or on the package index"
            raise ExportError(
                f"cannot resolve {', '.join(requirements)} for {platform.docker} and CPython {platform.python_version} "
                f"{where} together with the bundle's lock: {_pip_failure(result.stdout + result.stderr)}"
            )
        install: list[dict[str, Any]] = json.loads((work / "report.json").read_text())["install"]
        return install


def _pip_failure(output: str) -> str:
    """The lines that explain a failed resolution: pip's "conflict is caused by" list when there is one."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("WARNING")]
    for index, line in enumerate(lines):
        if line.startswith("The conflict is caused by"):
            cause = []
            for entry in lines[index + 1 :]:
                if entry.startswith(("To fix this", "Additionally", "ERROR")):
                    break
                cause.append(entry)
            return "the conflict is caused by: " + "; ".join(cause[:6])
    return _last_lines("\n".join(lines), 4)


def _wheel_sha256(item: dict[str, Any]) -> str:
    info = item["download_info"]
    hashes = info.get("archive_info", {}).get("hashes", {})
    if "sha256" in hashes:
        return str(hashes["sha256"])
    url = urlparse(str(info["url"]))
    if url.scheme == "file":  # a wheel from --find-links: pip reports no digest
        return hashlib.sha256(Path(unquote(url.path)).read_bytes()).hexdigest()
    raise ExportError(f"pip reported no sha256 for {info['url']}; cannot pin it for a hash-checked install")
