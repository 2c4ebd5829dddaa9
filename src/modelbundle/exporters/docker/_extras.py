"""Requirements an image target adds to the bundle's lock (``awslambdaric`` for ``--target lambda-image``).

They are resolved on the host, for the image's platform and Python, with every
pin of the bundle's lock as a constraint (an extra never moves a locked
version), by ``pip install --dry-run --report``. Each distribution the lock
lacks becomes a pin with the sha256 of the exact wheel pip chose, so the image
lock (the bundle's lock plus these pins) installs hash-checked, in the same
venv layer, like the rest. Resolutions are cached by their inputs: a warm
containerize asks no index.

When the extras cannot join the lock, the error names the locked pins pip
blames, each as a direct requirement of the bundle (requirements.in) or a
transitive one, and the way out for each. ``relax_transitive_pins``
(``--relax-transitive-pins``) takes the way out for transitive pins: the
constraints on the pins pip blames are dropped and pip resolves again, round
after round while it blames new ones. Direct pins never move. In those rounds
the other locked pins are requirements, not only constraints, so pip also
checks that the bundle's own distributions accept the versions that moved. A
moved pin replaces the bundle's entry in the image lock only; the bundle and
its lock stay as built.

``target_lock`` (``--target-lock``) makes the additions reproducible: its pins
constrain what the bundle's lock does not pin (the bundle's lock wins), and
every wheel added or moved must be one its hashes allow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name, canonicalize_version

from ...bundler import (
    FAST_FAIL_PIP_ARGS,
    LockedDistribution,
    Reporter,
    WheelCache,
    file_digest,
    read_lock,
    run_pip,
)
from ...errors import ExportError
from ._pip_conflict import REQUESTED, conflict_lines, pip_failure
from ._platform import ImagePlatform
from ._target_lock import check_target_lock, read_target_lock

#: bumped when the cached resolution's form changes
_CACHE_FORMAT = 2
#: --relax-transitive-pins gives up after this many rounds of moving the pins pip blames
MAX_RELAX_ROUNDS = 8
#: the distribution name that starts a lock entry's first line
_ENTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class MovedPin:
    """A pin of the bundle's lock that an image target moved (``--relax-transitive-pins``)."""

    name: str
    #: the version in the bundle's lock
    locked: str
    #: the version in the image
    version: str
    #: ``name==version --hash=sha256:...``, which replaces the bundle's entry in the image lock
    entry: str


@dataclass(frozen=True)
class ImageExtras:
    """What an image target changes in the bundle's lock (``resolve_extras``), for ``image_lock_text``."""

    #: ``name==version --hash=sha256:<wheel>`` for each distribution the bundle's lock lacks, sorted
    added: tuple[str, ...] = ()
    #: locked transitive pins the target moved, by name (only with ``relax_transitive_pins``)
    moved: tuple[MovedPin, ...] = ()


def resolve_extras(
    requirements: Sequence[str],
    lock_file: Path,
    platform: ImagePlatform,
    cache: WheelCache,
    reporter: Reporter,
    *,
    direct: Collection[str],
    relax_transitive_pins: bool = False,
    target_lock: Path | None = None,
    offline: bool = False,
) -> ImageExtras:
    """What ``requirements`` add to (and, with ``relax_transitive_pins``, move in) the lock; empty if nothing.

    ``direct`` is the bundle's direct requirements (its requirements.in lines, or their names): they never move.
    ExportError when the requirements cannot join the lock (naming the pins pip blames and
    what to do), or when ``target_lock`` does not allow a wheel that pip chose.
    """
    target = read_target_lock(target_lock) if target_lock is not None else None
    if not requirements:
        return ImageExtras()
    locked = {dist.name: dist for dist in read_lock(lock_file)}
    resolution = _Resolution(requirements, locked, _distribution_names(direct), target or {}, platform, offline)
    key = hashlib.sha256(
        json.dumps([
            _CACHE_FORMAT, sorted(requirements), "".join(f"{dist.pin}\n" for dist in locked.values()),
            sorted(resolution.direct), relax_transitive_pins,
            None if target is None else sorted((dist.pin, sorted(dist.hashes)) for dist in target.values()),
            platform.docker, platform.python_version,
        ]).encode()
    ).hexdigest()[:32]
    cached = cache.directory.parent / "image-extras" / f"{key}.json"
    extras = _read_cached(cached)
    if extras is None:
        extras = resolution.run(cache, reporter, relax=relax_transitive_pins)
        if target is not None and target_lock is not None:
            check_target_lock(extras, target, target_lock)
        _write_cached(cached, extras)
    for pin in extras.moved:
        # a warning, so that --quiet still says that the image runs another version than the bundle's lock
        reporter.warn(f"moved {pin.name} {pin.locked} -> {pin.version} (transitive; the bundle's lock is unchanged, the image's lock records it)")
    return extras


def image_lock_text(bundle_lock: Path, extras: ImageExtras, target: str) -> str:
    """The bundle's lock less the entries that moved, then the target's pins (one entry per line, as pip reads them).

    With nothing moved, the bundle's lock is copied byte for byte: the venv layer's digest depends on these bytes.
    """
    text = bundle_lock.read_text()
    if not extras.added and not extras.moved:
        return text
    if extras.moved:
        text = _without_entries(text, {pin.name for pin in extras.moved})
    sections = [text.rstrip("\n") + "\n"]
    if extras.added:
        sections.append(f"# added for --target {target} (resolved with the lines above as constraints)\n")
        sections += [f"{entry}\n" for entry in extras.added]
    if extras.moved:
        sections.append(f"# moved for --target {target} by --relax-transitive-pins (the bundle's own lock is unchanged)\n")
        sections += [f"{pin.entry}\n    # the bundle's lock: {pin.name}=={pin.locked}\n" for pin in extras.moved]
    return "".join(sections)


@dataclass(frozen=True)
class _Blamed:
    """The pins pip named in a conflict, by name: the bundle's lock's and the target lock's."""

    bundle: tuple[NormalizedName, ...]
    target: tuple[NormalizedName, ...]


class _Unresolvable(Exception):
    """pip could not resolve; ``output`` is what it said."""

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


class _Resolution:
    """The target's requirements against one bundle's lock: strict first, then (when asked) letting transitive pins move."""

    def __init__(
        self,
        requirements: Sequence[str],
        locked: Mapping[NormalizedName, LockedDistribution],
        direct: Collection[str],
        target: Mapping[NormalizedName, LockedDistribution],
        platform: ImagePlatform,
        offline: bool,
    ) -> None:
        self.requirements = requirements
        self.locked = locked
        self.direct = direct
        self.target = target
        self.platform = platform
        self.offline = offline

    def run(self, cache: WheelCache, reporter: Reporter, *, relax: bool) -> ImageExtras:
        relaxed: set[str] = set()
        rounds = 0
        last_resort = False
        while True:
            try:
                report = self._pip_report(relaxed, cache, reporter)
                break
            except _Unresolvable as failure:
                blamed = self._blamed(failure.output, relaxed)
                if relax:
                    new = {name for name in blamed.bundle if name not in self.direct}
                    if new and rounds < MAX_RELAX_ROUNDS:
                        relaxed |= new
                        rounds += 1
                        continue
                    if not blamed.bundle and not last_resort:
                        # pip blamed no locked pin: let every transitive one move, in one last round
                        relaxed |= {name for name in self.locked if name not in self.direct}
                        last_resort = True
                        continue
                raise self._error(failure.output, blamed, relaxed, relax=relax, gave_up=rounds >= MAX_RELAX_ROUNDS) from None
        added, moved = [], []
        for item in report:
            name = canonicalize_name(item["metadata"]["name"])
            version = str(item["metadata"]["version"])
            dist = self.locked.get(name)
            if dist is not None and canonicalize_version(dist.version) == canonicalize_version(version):
                continue  # the lock's own pin, kept
            entry = f"{name}=={version} --hash=sha256:{_wheel_sha256(item)}"
            if dist is None:
                added.append(entry)
            else:
                moved.append(MovedPin(name, dist.version, version, entry))
        return ImageExtras(tuple(sorted(added)), tuple(sorted(moved, key=lambda pin: pin.name)))

    def _pip_report(self, relaxed: set[str], cache: WheelCache, reporter: Reporter) -> list[dict[str, Any]]:
        kept = [dist for name, dist in self.locked.items() if name not in relaxed]
        # the target lock pins what the bundle's lock does not (or no longer does): the bundle's lock wins
        constraints = [dist.pin for dist in kept] + [
            dist.pin for name, dist in self.target.items() if name not in self.locked or name in relaxed
        ]
        # once pins may move, the bundle's other distributions are requirements too, not only
        # constraints: pip then checks that each of them accepts the versions that moved
        required = [*self.requirements, *(_requirement_line(dist) for dist in kept)] if relaxed else list(self.requirements)
        what = f"resolving {', '.join(self.requirements)} for {self.platform.docker}, Python {self.platform.python_version}"
        if relaxed:
            what += f", letting {_names(relaxed)} move"
        with reporter.step(what + "..."):
            return _pip_report(required, "".join(f"{pin}\n" for pin in constraints), self.platform, cache, self.offline)

    def _blamed(self, output: str, relaxed: Collection[str]) -> _Blamed:
        """The pins pip's "The user requested ..." lines name (a relaxed name's constraint is the target lock's)."""
        bundle: list[NormalizedName] = []
        target: list[NormalizedName] = []
        own = _distribution_names(self.requirements)
        for line in conflict_lines(output):
            match = REQUESTED.match(line)
            if not match:
                continue
            try:
                name = canonicalize_name(Requirement(match.group("spec")).name)
            except InvalidRequirement:
                continue
            constraint = bool(match.group("constraint"))
            if not constraint and name in own:
                continue  # the target's own requirement (ray[serve]), not a pin
            if name in self.locked and name not in relaxed:
                found = bundle  # a constraint, or in a relaxing round a requirement too
            elif name in self.target and constraint:
                found = target
            else:
                continue
            if name not in found:
                found.append(name)
        return _Blamed(tuple(bundle), tuple(target))

    def _error(self, output: str, blamed: _Blamed, relaxed: set[str], *, relax: bool, gave_up: bool) -> ExportError:
        where = "in the wheel cache (offline)" if self.offline else "in the wheel cache or on the package index"
        message = (
            f"cannot resolve {', '.join(self.requirements)} for {self.platform.docker} and CPython {self.platform.python_version} "
            f"{where} together with the bundle's lock"
        )
        if relaxed:
            message += f" (even letting {_names(relaxed)} move)"
        if not blamed.bundle and not blamed.target:
            return ExportError(f"{message}: {pip_failure(output)}")
        transitive = [name for name in blamed.bundle if name not in self.direct]
        involved = [
            f"the bundle's {self.locked[name].pin} "
            + ("(transitive: not in the bundle's requirements)" if name in transitive else "(direct: in the bundle's requirements)")
            for name in blamed.bundle
        ] + [f"the target lock's {self.target[name].pin}" for name in blamed.target]
        advice = []
        if transitive and not relax:
            advice.append(
                f"pass --relax-transitive-pins to let {', '.join(_requirement_names(self.requirements))} "
                f"move {'it' if len(transitive) == 1 else 'them'} (what moved is printed)"
            )
        elif transitive and gave_up:
            advice.append(f"--relax-transitive-pins gave up after {MAX_RELAX_ROUNDS} rounds of moving pins")
        if len(transitive) < len(blamed.bundle):
            pins = "that pin" if len(blamed.bundle) - len(transitive) == 1 else "those pins"
            advice.append(f"change {pins} in the bundle's requirements (python_packages / --requirements) and build again")
        if blamed.target:
            advice.append("lock the target's requirements again with the bundle's pins as constraints (--target-lock)")
        return ExportError(f"{message}: the conflict involves {' and '.join(involved)}; {'; '.join(advice)}; pip: {pip_failure(output)}")


def _pip_report(
    requirements: Sequence[str], constraints: str, platform: ImagePlatform, cache: WheelCache, offline: bool
) -> list[dict[str, Any]]:
    cache.directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="extras-") as scratch:
        work = Path(scratch)
        (work / "constraints.txt").write_text(constraints)
        result = run_pip([
            # not --quiet: on a conflict, pip says which pins caused it only at its normal verbosity
            "install", "--dry-run", "--ignore-installed",
            "--report", str(work / "report.json"), "--target", str(work / "target"), *FAST_FAIL_PIP_ARGS,
            *platform.pip_args(), "--find-links", str(cache.directory), "-c", str(work / "constraints.txt"),
            *(["--no-index"] if offline else []), *requirements,
        ])
        if result.returncode != 0:
            raise _Unresolvable(result.stdout + result.stderr)
        install: list[dict[str, Any]] = json.loads((work / "report.json").read_text())["install"]
        return install


def _distribution_names(requirements: Iterable[str]) -> set[NormalizedName]:
    """``numpy`` for ``numpy==2.4.6`` (and for ``numpy``)."""
    names = set()
    for line in requirements:
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            names.add(canonicalize_name(line))  # a build checks every line: nothing else reaches here
    return names


def _requirement_line(dist: LockedDistribution) -> str:
    """The entry's requirement without its hashes, its marker kept (a pin for another OS is then skipped, not required)."""
    return re.split(r"\s+--|\\", dist.text, maxsplit=1)[0].strip()


def _requirement_names(requirements: Iterable[str]) -> list[str]:
    """``ray[serve]`` for ``ray[serve]>=2.60,<3``: what a sentence calls a requirement."""
    names = []
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            names.append(line)
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        names.append(requirement.name + extras)
    return names


def _names(names: Collection[str]) -> str:
    """A few names, or how many (the last resort may free every transitive pin)."""
    return ", ".join(sorted(names)) if len(names) <= 6 else f"{len(names)} transitive pins"


def _without_entries(text: str, names: Collection[str]) -> str:
    """The lock's text without the entries of ``names``: their requirement, ``--hash`` and ``# via`` lines."""
    kept = []
    dropping = False
    for line in text.splitlines(keepends=True):
        if dropping and line[:1] in (" ", "\t") and line.strip():
            continue  # a --hash continuation or an indented comment of the dropped entry
        dropping = False
        match = _ENTRY_NAME.match(line)
        if match and canonicalize_name(match.group()) in names:
            dropping = True
            continue
        kept.append(line)
    return "".join(kept)


def _read_cached(path: Path) -> ImageExtras | None:
    try:
        data = json.loads(path.read_text())
        return ImageExtras(tuple(data["added"]), tuple(MovedPin(*moved) for moved in data["moved"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cached(path: Path, extras: ImageExtras) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".extras-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump({"added": extras.added, "moved": [[p.name, p.locked, p.version, p.entry] for p in extras.moved]}, handle)
    os.replace(tmp, path)


def _wheel_sha256(item: dict[str, Any]) -> str:
    info = item["download_info"]
    hashes = info.get("archive_info", {}).get("hashes", {})
    if "sha256" in hashes:
        return str(hashes["sha256"])
    url = urlparse(str(info["url"]))
    if url.scheme == "file":  # a wheel from --find-links: pip reports no digest
        return file_digest(Path(unquote(url.path)))
    raise ExportError(f"pip reported no sha256 for {info['url']}; cannot pin it for a hash-checked install")
