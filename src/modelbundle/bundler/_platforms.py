"""Wheel platforms: which wheels run on a machine, for a CPython version, under a glibc ceiling.

One definition for every place that picks wheels for somewhere else than the
running interpreter (images, Lambda zips) and for the host itself.

``manylinux_2_X_<machine>`` (PEP 600) means "needs glibc 2.X or newer". The
older policy names are aliases of it, as pip and packaging read them:
manylinux1 = manylinux_2_5, manylinux2010 = manylinux_2_12 (both x86_64 and
i686 only), manylinux2014 = manylinux_2_17. A platform with glibc 2.C takes
every manylinux_2_X with X <= C, down to the oldest glibc its machine had a
policy for (2.5 on x86_64 and i686; 2.17, manylinux2014, elsewhere), and the
alias of each. The aliases are listed explicitly: pip expands
``--platform manylinux2014_x86_64`` to manylinux2010 and manylinux1 itself,
but packaging's tag functions, which match wheel files here, do not.
"""

from __future__ import annotations

import os
import platform as _host
import sys
from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

#: the legacy manylinux policy names and the glibc each stands for
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
#: the oldest glibc minor a manylinux policy exists for, per machine (others: 17, manylinux2014's)
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "i686": 5}
#: machines manylinux1 and manylinux2010 were defined for
_LEGACY_MACHINES = frozenset({"x86_64", "i686"})


@dataclass(frozen=True)
class WheelPlatform:
    """Where wheels must run: CPython ``python_version`` ("3.11") on Linux ``machine`` with glibc up to ``glibc``.

    ``glibc`` is the ceiling, ``(2, 36)`` for Debian bookworm: a wheel that needs a newer
    glibc imports fine on a newer build machine and fails there. ``native`` is the running
    interpreter's own platform (``WheelPlatform.host()``): its tags are packaging's for this
    machine (locally built ``linux_*`` wheels included), and pip needs no platform arguments.
    """

    machine: str
    python_version: str
    glibc: tuple[int, int]
    native: bool = False

    @classmethod
    def host(cls) -> WheelPlatform:
        """The running interpreter's platform."""
        return cls(_host.machine(), "{}.{}".format(*sys.version_info[:2]), _host_glibc(), native=True)

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    @property
    def abi(self) -> str:
        return "cp{}{}".format(*self.python_tuple)

    def describe(self) -> str:
        """``CPython 3.11 on x86_64 (glibc 2.36)``, for messages."""
        return f"CPython {self.python_version} on {self.machine} (glibc {self.glibc[0]}.{self.glibc[1]})"

    @cached_property
    def platform_tags(self) -> tuple[str, ...]:
        """The manylinux platform tags, most specific first, each alias right after its manylinux_2_X."""
        return manylinux_platforms(self.machine, self.glibc)

    @cached_property
    def tags(self) -> frozenset[Tag]:
        """Every wheel tag an install on this platform accepts."""
        if self.native:
            return frozenset(sys_tags())
        version = self.python_tuple
        platforms = list(self.platform_tags)
        return frozenset([*cpython_tags(version, [self.abi], platforms), *compatible_tags(version, self.abi, platforms)])

    @cached_property
    def _tag_rank(self) -> dict[Tag, int]:
        ordered = list(sys_tags()) if self.native else [
            *cpython_tags(self.python_tuple, [self.abi], list(self.platform_tags)),
            *compatible_tags(self.python_tuple, self.abi, list(self.platform_tags)),
        ]
        rank: dict[Tag, int] = {}
        for index, tag in enumerate(ordered):
            rank.setdefault(tag, index)
        return rank

    def wheel_rank(self, filename: str) -> int | None:
        """How well a wheel file fits (lower is better, as pip prefers), or None when it does not run here."""
        try:
            _name, _version, _build, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        ranks = [self._tag_rank[tag] for tag in tags if tag in self._tag_rank]
        return min(ranks) if ranks else None

    def accepts(self, filename: str) -> bool:
        """Whether the wheel file named ``filename`` installs on this platform."""
        return self.wheel_rank(filename) is not None

    def pip_args(self) -> list[str]:
        """pip download/install arguments that select this platform's wheels (binary wheels only)."""
        if self.native:
            return ["--only-binary=:all:"]
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python_version, "--abi", self.abi]
        for tag in self.platform_tags:
            args += ["--platform", tag]
        return args


def manylinux_platforms(machine: str, glibc: tuple[int, int]) -> tuple[str, ...]:
    """``manylinux_2_36_x86_64``, ..., ``manylinux_2_17_x86_64``, ``manylinux2014_x86_64``, ..., ``manylinux1_x86_64``."""
    major, ceiling = glibc
    oldest = _OLDEST_GLIBC_MINOR.get(machine, 17)
    aliases = {version: name for name, version in LEGACY_MANYLINUX.items()}
    tags: list[str] = []
    for minor in range(ceiling, oldest - 1, -1):
        tags.append(f"manylinux_{major}_{minor}_{machine}")
        alias = aliases.get((major, minor))
        if alias is not None and (alias == "manylinux2014" or machine in _LEGACY_MACHINES):
            tags.append(f"{alias}_{machine}")
    return tuple(tags)


def manylinux_glibc(platform_tag: str) -> tuple[int, int] | None:
    """The glibc a manylinux platform tag needs (``manylinux2010_x86_64`` -> (2, 12)); None for other tags."""
    prefix, _, rest = platform_tag.partition("_")
    if prefix in LEGACY_MANYLINUX:
        return LEGACY_MANYLINUX[prefix]
    if prefix != "manylinux":
        return None
    major, _, rest = rest.partition("_")
    minor, _, _machine = rest.partition("_")
    if major.isdigit() and minor.isdigit():
        return int(major), int(minor)
    return None


def _host_glibc() -> tuple[int, int]:
    """This machine's glibc, (0, 0) without one (musl, macOS): its tags come from packaging then."""
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (AttributeError, OSError, ValueError):
        return (0, 0)
    major, _, minor = version.partition(".")
    if name == "glibc" and major.isdigit() and minor.split(".")[0].isdigit():
        return int(major), int(minor.split(".")[0])
    return (0, 0)
