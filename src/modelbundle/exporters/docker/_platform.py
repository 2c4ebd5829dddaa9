"""The image's platform: which wheels run inside it (``linux/amd64`` -> manylinux x86_64 tags)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags

from ...errors import ExportError

DEFAULT_PLATFORM = "linux/amd64"
#: Docker's architecture name -> the machine name in wheel tags
_ARCHITECTURES = {"amd64": "x86_64", "arm64": "aarch64"}
#: the oldest glibc a manylinux wheel may need (manylinux2014) and the newest the default
#: bases have (Debian bookworm, like python:3.X-slim, ships glibc 2.36)
_GLIBC_MINOR_RANGE = range(17, 37)


@dataclass(frozen=True)
class ImagePlatform:
    """Where the image runs: an OS/architecture pair and the CPython version of its base."""

    os: str
    architecture: str  # Docker's name: amd64, arm64
    python_version: str  # "3.11"

    @classmethod
    def parse(cls, platform: str, python_version: str) -> ImagePlatform:
        os_name, _, arch = platform.partition("/")
        arch = arch.split("/")[0]  # linux/arm64/v8 -> arm64
        if os_name != "linux" or arch not in _ARCHITECTURES:
            choices = ", ".join(f"linux/{a}" for a in _ARCHITECTURES)
            raise ExportError(f"unsupported platform {platform!r}; choose one of {choices}")
        major, _, minor = python_version.partition(".")
        if not (major.isdigit() and minor.split(".")[0].isdigit()):
            raise ExportError(f"not a Python version: {python_version!r}")
        return cls(os_name, arch, f"{major}.{minor.split('.')[0]}")

    @property
    def docker(self) -> str:
        return f"{self.os}/{self.architecture}"

    @property
    def machine(self) -> str:
        return _ARCHITECTURES[self.architecture]

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")
        return int(major), int(minor)

    @property
    def abi(self) -> str:
        return "cp{}{}".format(*self.python_tuple)

    @cached_property
    def wheel_platforms(self) -> list[str]:
        """Platform tags of wheels that run here, most specific first (what pip's --platform takes)."""
        modern = [f"manylinux_2_{minor}_{self.machine}" for minor in reversed(_GLIBC_MINOR_RANGE)]
        legacy = [f"manylinux2014_{self.machine}"]
        if self.machine == "x86_64":
            legacy += ["manylinux2010_x86_64", "manylinux1_x86_64"]
        return modern + legacy

    @cached_property
    def tags(self) -> frozenset[Tag]:
        """Every wheel tag an install on this platform accepts."""
        version = self.python_tuple
        platforms = self.wheel_platforms
        return frozenset(
            [*cpython_tags(version, [self.abi], platforms), *compatible_tags(version, self.abi, platforms)]
        )

    def pip_args(self) -> list[str]:
        """pip download/install arguments that select this platform's wheels."""
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python_version, "--abi", self.abi]
        for platform in self.wheel_platforms:
            args += ["--platform", platform]
        return args
