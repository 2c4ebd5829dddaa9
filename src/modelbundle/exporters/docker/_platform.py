"""The image's platform: which wheels run inside it (``linux/amd64`` -> manylinux x86_64 tags).

The wheel tags themselves are the bundler's ``WheelPlatform``; what is the
image's own is Docker's names for architectures and the glibc of its base.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag

from ...bundler import WheelPlatform
from ...errors import ExportError

DEFAULT_PLATFORM = "linux/amd64"
#: Docker's architecture name -> the machine name in wheel tags
_ARCHITECTURES = {"amd64": "x86_64", "arm64": "aarch64"}
#: the newest glibc the default bases have (Debian bookworm, like python:3.X-slim, ships glibc 2.36)
BASE_GLIBC = (2, 36)


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

    @cached_property
    def wheels(self) -> WheelPlatform:
        """The wheels that run here: CPython of the base, this machine, the base's glibc."""
        return WheelPlatform(self.machine, self.python_version, BASE_GLIBC)

    @property
    def python_tuple(self) -> tuple[int, int]:
        return self.wheels.python_tuple

    @property
    def abi(self) -> str:
        return self.wheels.abi

    @property
    def wheel_platforms(self) -> list[str]:
        """Platform tags of wheels that run here, most specific first (what pip's --platform takes)."""
        return list(self.wheels.platform_tags)

    @property
    def tags(self) -> frozenset[Tag]:
        """Every wheel tag an install on this platform accepts."""
        return self.wheels.tags

    def pip_args(self) -> list[str]:
        """pip download/install arguments that select this platform's wheels."""
        return self.wheels.pip_args()
