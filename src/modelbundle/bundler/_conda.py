"""Conda environments: ``env/conda.yaml`` from the prefix's conda-meta, and conda-pack archives."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import BuildError

CONDA_PACK_FILE = "conda-env.tar.gz"
_ANACONDA_ORG = "https://conda.anaconda.org/"
_SUBDIRS = {
    "noarch", "linux-32", "linux-64", "linux-aarch64", "linux-armv6l", "linux-armv7l", "linux-ppc64le", "linux-s390x",
    "osx-64", "osx-arm64", "win-32", "win-64", "win-arm64",
}


def conda_prefix() -> Path | None:
    """The conda environment Python runs in, or None outside conda."""
    prefix = Path(sys.prefix)
    return prefix if (prefix / "conda-meta").is_dir() else None


def conda_yaml(prefix: Path, name: str, pip_requirements: Sequence[str]) -> str:
    """An environment.yml listing the prefix's conda packages (from conda-meta) and the pip requirements."""
    packages, channels = [], set()
    for record_path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            record = json.loads(record_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise BuildError(f"{record_path} is not a conda package record") from None
        if {"name", "version"} - record.keys():
            continue
        if record.get("channel") and not _installed_by_pip(record):
            channels.add(_channel_name(str(record["channel"]), str(record.get("subdir", ""))))
        if record["name"] == "python" or not _installed_by_pip(record):
            packages.append(f"{record['name']}={record['version']}={record.get('build', '*')}")
    lines = [f"name: {name}", "channels:"]
    lines += [f"  - {channel}" for channel in sorted(channels) or ["conda-forge"]]
    lines.append("dependencies:")
    lines += [f"  - {package}" for package in sorted(packages)]
    lines += ["  - pip", "  - pip:"]
    lines += [f"      - {requirement}" for requirement in pip_requirements]
    return "\n".join(lines) + "\n"


def conda_pack(prefix: Path, output: Path) -> None:
    """Pack the whole environment with conda-pack (relocatable, unpacks without conda)."""
    try:
        import conda_pack as packer  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise BuildError("--conda-pack needs conda-pack; pip install conda-pack (or conda install conda-pack)") from None
    try:
        packer.pack(prefix=str(prefix), output=str(output), compress_level=6, force=True, verbose=False)
    except Exception as exc:  # conda-pack raises its own CondaPackException and OS errors
        raise BuildError(f"conda-pack could not pack {prefix}: {exc}") from exc


def _channel_name(channel: str, subdir: str = "") -> str:
    """``conda-forge`` for https://conda.anaconda.org/conda-forge/linux-64; any other URL without its subdir.

    conda-meta records name the channel with the platform subdir, which is no channel.
    """
    if "://" not in channel:
        return channel
    url = channel.rstrip("/")
    base, _, last = url.rpartition("/")
    if last == subdir or last in _SUBDIRS:
        url = base
    return url.removeprefix(_ANACONDA_ORG) if url.startswith(_ANACONDA_ORG) else url


def _installed_by_pip(record: dict[str, object]) -> bool:
    return str(record.get("channel", "")).startswith("pypi") or record.get("build") == "pypi_0"
