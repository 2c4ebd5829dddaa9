"""Find a wheel for every pin of a lock, for a platform: from the wheel cache, else fetched in parallel.

Each pin's wheel is found by content: a file whose sha256 the lock allows and
whose tags fit the platform, wherever it lies. Pins the cache lacks are
fetched concurrently, one worker per pin: the pin's files are listed from
pip's indexes (the simple API, PEP 691 JSON or HTML, with the digests the
index publishes) and find-links, the best fitting file with an allowed digest
is fetched (a local one by preference: same digest, same bytes), and its
sha256 is checked against the lock before it enters the cache. What that finds
nothing for (an index that lists no digests, or one pip reaches through
credentials of its own) goes to ``pip download``, again one pin per worker,
as pip is configured here. Pins with no fitting wheel anywhere are named
together, with why, for the caller's error.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_version, parse_wheel_filename

from ._index import FileLink, IndexClient, UnreachableIndex
from ._installer import FAST_FAIL_PIP_ARGS, last_lines, missing_distribution, run_pip
from ._lockfile import LockedDistribution
from ._pip_settings import PipSettings, read_pip_settings
from ._platforms import WheelPlatform
from ._record import file_digest
from ._report import Reporter
from ._wheel_cache import WheelCache, link_or_copy

#: wheels fetched at once (downloads wait on the network, not on the CPU)
FETCH_WORKERS = 8
_T = TypeVar("_T")


@dataclass(frozen=True)
class MissingWheel:
    """A pin no fitting wheel was found for; ``reason`` says why when it is more than "none exists"."""

    dist: LockedDistribution
    reason: str | None = None


@dataclass(frozen=True)
class _Outcome:
    """What fetching one pin came to: a wheel in place, or why not; ``final`` when no other source can change that
    (a file whose digest the lock refuses, a wheel for another Python)."""

    fetched: bool = False
    reason: str | None = None
    final: bool = False


@dataclass
class FoundWheels:
    """What ``find_wheels`` found: a wheel per pin, by name, and the pins it found none for."""

    chosen: dict[NormalizedName, Path] = field(default_factory=dict)
    missing: list[MissingWheel] = field(default_factory=list)

    def place(self, locked: Iterable[LockedDistribution], destination: Path) -> list[Path]:
        """Link (or copy) the chosen wheels into ``destination``, in lock order."""
        destination.mkdir(parents=True, exist_ok=True)
        placed = []
        for dist in locked:
            source = self.chosen.get(dist.name)
            if source is not None:
                target = destination / source.name
                link_or_copy(source, target)
                placed.append(target)
        return placed


def find_wheels(
    locked: Sequence[LockedDistribution],
    platform: WheelPlatform,
    cache: WheelCache,
    reporter: Reporter,
    *,
    extra_dirs: Sequence[Path] = (),
    offline: bool = False,
    pip: PipSettings | None = None,
    pip_fallback: bool = True,
    label: str | None = None,
    workers: int = FETCH_WORKERS,
) -> FoundWheels:
    """A wheel for each pin that fits ``platform`` and has a digest the lock allows.

    Looks in the cache and ``extra_dirs`` first; then (unless ``offline``) fetches the
    missing ones, ``workers`` at a time, into the cache. ``pip``: the index settings
    (default: pip's own, read from its configuration). ``pip_fallback``: hand the pins
    that fetching found nothing for to ``pip download``. ``label`` names the platform
    in the progress line.
    """
    wanted = [dist for dist in locked if _applies(dist, platform)]
    extra = [directory for directory in extra_dirs if directory.is_dir()]
    found = _match(wanted, {**_by_digest(extra, wanted), **cache.by_digest()}, platform)
    if not found.missing or offline:
        return found
    pins = [missing.dist for missing in found.missing]
    names = ", ".join(dist.pin for dist in pins)
    with reporter.step(f"downloading {len(pins)} wheels for {label or platform.describe()}: {names}..."), cache.scratch() as scratch:
        work = Path(scratch)
        settings = pip if pip is not None else read_pip_settings(cache_dir=cache.directory.parent)
        client = IndexClient(settings)
        local = [*extra, *(Path(link) for link in settings.find_links if "://" not in link)]
        outcomes = _in_parallel(pins, lambda dist: _fetch(dist, platform, client, local, work), workers)
        cache.add(work.glob("*.whl"))
        reasons = {name: outcome.reason for name, outcome in outcomes.items()}
        # what was not fetched (nothing listed it, an index was unreachable) pip may still find, as it is configured
        again = [dist for dist in pins if not outcomes[dist.name].fetched and not outcomes[dist.name].final]
        if pip_fallback and again:
            said = _in_parallel(again, lambda dist: _pip_download(dist, platform, cache, work / f"pip-{dist.name}"), workers)
            for dist in again:
                cache.add((work / f"pip-{dist.name}").glob("*.whl"))
                reasons[dist.name] = said[dist.name] or reasons[dist.name]
    more = _match(pins, {**_by_digest(extra, pins), **cache.by_digest()}, platform)
    found.chosen.update(more.chosen)
    found.missing = [MissingWheel(m.dist, reasons.get(m.dist.name)) for m in more.missing]
    return found


def _by_digest(folders: Sequence[Path], locked: Sequence[LockedDistribution]) -> dict[str, Path]:
    """sha256 -> wheel over ``folders``, hashing only the wheels of the pins (a folder may hold gigabytes of others)."""
    found = {}
    for link in (link for dist in locked for link in _local_links(dist, folders)):
        if link.sha256 is not None:
            found[link.sha256] = link.path
    return found


def _applies(dist: LockedDistribution, platform: WheelPlatform) -> bool:
    """Whether the pin's marker holds where the wheels will run (a ``sys_platform == "win32"`` pin needs none on Linux)."""
    requirement = dist.text.split("\\", 1)[0].split(" --", 1)[0]
    _, semicolon, marker = requirement.partition(";")
    if not semicolon:
        return True
    try:
        parsed = Marker(marker.strip())
    except InvalidMarker:
        return True
    if platform.native:
        return parsed.evaluate()
    return parsed.evaluate(_marker_environment(platform))


def _marker_environment(platform: WheelPlatform) -> dict[str, str]:
    """PEP 508's environment of CPython ``platform.python_version`` on Linux ``platform.machine``."""
    return {
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "sys_platform": "linux", "os_name": "posix", "platform_system": "Linux",
        "platform_machine": platform.machine, "python_version": platform.python_version,
        "python_full_version": f"{platform.python_version}.0", "implementation_version": f"{platform.python_version}.0",
        "platform_release": "", "platform_version": "",
    }


def _match(locked: Sequence[LockedDistribution], wheels: dict[str, Path], platform: WheelPlatform) -> FoundWheels:
    """For each pin, the best fitting wheel among those whose digest the lock allows."""
    found = FoundWheels()
    for dist in locked:
        fitting = []
        for digest in sorted(dist.hashes):
            wheel = wheels.get(digest)
            rank = platform.wheel_rank(wheel.name) if wheel is not None else None
            if wheel is not None and rank is not None:
                fitting.append((rank, wheel.name, wheel))
        if fitting:
            found.chosen[dist.name] = min(fitting)[2]
        else:
            found.missing.append(MissingWheel(dist))
    return found


def _in_parallel(
    pins: Sequence[LockedDistribution], work: Callable[[LockedDistribution], _T], workers: int
) -> dict[NormalizedName, _T]:
    """``work`` for every pin, ``workers`` at a time, by pin name."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pins))), thread_name_prefix="wheels") as pool:
        return dict(zip([dist.name for dist in pins], pool.map(work, pins), strict=True))


def _fetch(
    dist: LockedDistribution, platform: WheelPlatform, client: IndexClient, local: Sequence[Path], work: Path
) -> _Outcome:
    """Put a wheel of ``dist`` whose digest the lock allows, for the platform's Python, into ``work``."""
    candidates: list[tuple[int, int, FileLink]] = []
    problems: list[str] = []
    refused = unreachable = False

    def consider(links: Iterable[FileLink]) -> None:
        for link in links:
            rank = platform.wheel_rank(link.filename) if _is_wheel_of(link.filename, dist) else None
            if rank is None:
                continue
            if link.requires_python and not _python_fits(link.requires_python, platform):
                problems.append(f"{dist.pin} requires Python {link.requires_python}")
                continue
            if link.sha256 is not None and link.sha256 not in dist.hashes:
                if link.local:  # most often a wheel rebuilt since the lock was made: worth saying
                    problems.append(f"{link.url} has sha256 {link.sha256}, which the lock does not allow for {dist.pin}")
                continue
            candidates.append((0 if link.local else 1, rank, link))

    consider(_local_links(dist, local))
    roots = sorted(client.indexes(), key=lambda root: not root.startswith("file:"))  # the disk before the network
    for root in roots:
        if not root.startswith("file:") and any(where == 0 and link.sha256 for where, _, link in candidates):
            break  # a file on this machine with an allowed digest: the same bytes as any download
        try:
            consider(client.project_files(root, dist.name))
        except UnreachableIndex as exc:
            problems.append(str(exc))
    for _, _, link in sorted(candidates, key=lambda c: (c[0], c[1], c[2].url)):
        target = work / link.filename
        partial = work / f".{link.filename}.partial"
        try:
            digest = client.download(link, partial)
        except UnreachableIndex as exc:
            problems.append(str(exc))
            unreachable = True
            continue
        if digest not in dist.hashes:
            partial.unlink(missing_ok=True)
            problems.append(f"{link.url} has sha256 {digest}, which the lock does not allow for {dist.pin}")
            refused = True
            continue
        requires = link.requires_python or _requires_python(partial)
        if requires and not _python_fits(requires, platform):
            # pip would refuse it for this Python (its index may not have said so): so does the caller's pip
            partial.unlink(missing_ok=True)
            return _Outcome(reason=f"{dist.pin} requires Python {requires}", final=True)
        partial.replace(target)
        return _Outcome(fetched=True)
    # a refused digest is final only when nothing failed on the way: pip may still reach the right file
    return _Outcome(reason="; ".join(problems) or None, final=refused and not unreachable)


def _python_fits(requires: str, platform: WheelPlatform) -> bool:
    """Whether ``Requires-Python: requires`` admits the platform's Python, as pip checks it (``3.11`` against the specifier)."""
    try:
        return SpecifierSet(requires).contains(platform.python_version, prereleases=True)
    except InvalidSpecifier:
        return True  # pip ignores a specifier it cannot read


def _requires_python(wheel: Path) -> str | None:
    """The Requires-Python of a wheel's METADATA, if it has one."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if not names:
                return None
            headers = archive.read(names[0]).decode("utf-8", errors="replace").split("\n\n", 1)[0]
    except (OSError, zipfile.BadZipFile):
        return None
    for line in headers.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "requires-python":
            return value.strip() or None
    return None


def _local_links(dist: LockedDistribution, folders: Sequence[Path]) -> list[FileLink]:
    """The wheels of ``dist`` in ``folders``, hashed."""
    links = []
    for folder in folders:
        with contextlib.suppress(OSError):
            for path in sorted(folder.glob("*.whl")):
                if _is_wheel_of(path.name, dist):
                    links.append(FileLink(path.name, path.as_uri(), file_digest(path), local=True))
    return links


def _is_wheel_of(filename: str, dist: LockedDistribution) -> bool:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except ValueError:
        return False
    return name == dist.name and canonicalize_version(version) == canonicalize_version(dist.version)


def _pip_download(dist: LockedDistribution, platform: WheelPlatform, cache: WheelCache, work: Path) -> str | None:
    """``pip download`` one pin into ``work``; None when pip got it or found no fitting file, else its error."""
    work.mkdir(parents=True, exist_ok=True)
    requirements = work / "requirements.txt"
    requirements.write_text(dist.text + "\n")
    result = run_pip([
        "download", "--quiet", "--no-deps", "--require-hashes", *FAST_FAIL_PIP_ARGS, *platform.pip_args(),
        "--find-links", str(cache.directory), "-d", str(work), "-r", str(requirements),
    ])
    requirements.unlink()
    output = result.stderr or result.stdout
    if result.returncode == 0 or missing_distribution(output):
        return None
    return f"pip download failed: {last_lines(output, 6)}"
