"""Which AWS Lambda runtime a Python version means, and the wheel platforms that run on it.

Lambda's python3.10 and python3.11 runtimes run on Amazon Linux 2 (glibc 2.26);
python3.12 and later on Amazon Linux 2023 (glibc 2.34). A wheel built for a
newer glibc than the runtime's imports fine on a build machine and fails on
Lambda, so the platforms pip may pick are capped per runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ...bundler import WheelPlatform
from ...errors import ExportError

#: ``--arch`` value -> the machine name in wheel platform tags
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
#: the Python versions Lambda has managed runtimes for (modelbundle needs 3.10+)
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
#: the newest manylinux glibc accepted: Amazon Linux 2 has glibc 2.26; Amazon Linux 2023 has 2.34,
#: capped at 2.28, the newest policy that projects commonly build wheels for
_GLIBC_AL2 = 26
_GLIBC_AL2023 = 28


@dataclass(frozen=True)
class LambdaRuntime:
    """A Lambda managed runtime: ``python`` ("3.11") on ``arch`` ("x86_64" or "arm64")."""

    python: str
    arch: str

    @property
    def identifier(self) -> str:
        """The runtime's name in Lambda (``python3.11``)."""
        return f"python{self.python}"

    @property
    def amazon_linux(self) -> str:
        return "Amazon Linux 2" if self._minor < 12 else "Amazon Linux 2023"

    @property
    def glibc(self) -> str:
        return f"2.{_GLIBC_AL2 if self._minor < 12 else _GLIBC_AL2023}"

    @property
    def abi(self) -> str:
        return f"cp3{self._minor}"

    @cached_property
    def wheels(self) -> WheelPlatform:
        """The wheels that run on this runtime: its CPython and machine, under its glibc."""
        return WheelPlatform(ARCHITECTURES[self.arch], self.python, (2, _GLIBC_AL2 if self._minor < 12 else _GLIBC_AL2023))

    @property
    def platforms(self) -> list[str]:
        """``--platform`` values for pip, newest glibc first (the legacy manylinux aliases included)."""
        return list(self.wheels.platform_tags)

    def describe(self) -> str:
        return f"{self.identifier} {self.arch} ({self.amazon_linux}, glibc {self.glibc})"

    @property
    def _minor(self) -> int:
        return int(self.python.split(".")[1])


def lambda_runtime(python: str, arch: str) -> LambdaRuntime:
    """The runtime for ``--python`` and ``--arch``, or an ExportError naming the choices."""
    if arch not in ARCHITECTURES:
        raise ExportError(f"--arch {arch!r} is not a Lambda architecture; use one of {', '.join(ARCHITECTURES)}")
    parts = python.split(".")
    short = ".".join(parts[:2])
    if len(parts) not in (2, 3) or short not in PYTHON_VERSIONS:
        raise ExportError(f"--python {python!r} is not a Lambda Python runtime; use one of {', '.join(PYTHON_VERSIONS)}")
    return LambdaRuntime(short, arch)
