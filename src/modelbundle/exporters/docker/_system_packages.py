"""A bundle's ``system_packages``: Debian packages fetched on this machine, installed offline in the image.

The image's Debian release is the base image's (its ``/etc/os-release``), which
may differ from this machine's, so the host's own apt lists are never used.
Instead apt runs against a private root per release and architecture in the
cache (``apt/<codename>-<arch>``): a sources list for that release on the
Debian mirror this machine uses (checked with this machine's Debian keyring),
its own package lists and downloaded ``.deb`` files, and as the installed
package set the base image's ``/var/lib/dpkg/status``. apt then resolves
exactly what the base image lacks, dependencies included, and downloads it;
the files are cached and reused by later builds. The build installs them with
``apt-get`` from the context, with no sources and no network.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...bundler import Reporter
from ...errors import ExportError
from ._platform import ImagePlatform

#: the Debian archive and its security archive, unless this machine's apt sources name other mirrors
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
#: override either mirror (a local mirror or proxy)
MIRROR_ENV, SECURITY_MIRROR_ENV = "MODELBUNDLE_DEBIAN_MIRROR", "MODELBUNDLE_DEBIAN_SECURITY_MIRROR"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
HOST_SOURCES = Path("/etc/apt")
#: apt-get -s prints one line per package it would install: "Inst NAME [OLD] (VERSION SUITES [ARCH])"
_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[[^\]]*\] )?\((?P<version>\S+) .*\[(?P<arch>[^\]]+)\]\)")


@dataclass(frozen=True)
class BaseRelease:
    """What the base image is: its Debian codename, and the packages it has (its dpkg status file)."""

    codename: str
    dpkg_status: bytes


@dataclass(frozen=True)
class FetchedDebs:
    """The ``.deb`` files a bundle's system packages need on one base image (empty: it has them all)."""

    packages: tuple[str, ...]
    files: tuple[Path, ...]

    def digests(self) -> list[tuple[str, str]]:
        """(file name, sha256) of each file: part of what decides the venv image."""
        return [(path.name, hashlib.sha256(path.read_bytes()).hexdigest()) for path in self.files]


def read_base_release(client: Any, base_image: str) -> BaseRelease:
    """The base image's Debian codename and dpkg status, read from a created (never started) container."""
    import docker

    try:
        container = client.containers.create(base_image, command=["true"], network_disabled=True)
    except docker.errors.APIError as exc:
        raise ExportError(f"cannot look into the base image {base_image}: {exc}") from None
    try:
        os_release = _read_file(container, "/etc/os-release") or _read_file(container, "/usr/lib/os-release")
        status = _read_file(container, "/var/lib/dpkg/status")
    finally:
        container.remove(force=True)
    fields = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', (os_release or b"").decode(errors="replace"), re.MULTILINE))
    codename = fields.get("VERSION_CODENAME", "")
    debian = fields.get("ID") == "debian" or "debian" in fields.get("ID_LIKE", "").split()
    if not debian or not codename or status is None:
        raise ExportError(
            f"system_packages need a Debian base image with dpkg; {base_image} is "
            f"{fields.get('PRETTY_NAME', 'not Debian (no /etc/os-release)')}: choose a Debian --base-image"
        )
    return BaseRelease(codename, status)


def _read_file(container: Any, path: str, depth: int = 0) -> bytes | None:
    """A file of the container, following a symlink (os-release is one) a few times; None if it is absent."""
    import docker

    try:
        stream, _stat = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        if member is None:
            return None
        if member.issym() and depth < 5:
            return _read_file(container, os.path.normpath(os.path.join(os.path.dirname(path), member.linkname)), depth + 1)
        handle = tar.extractfile(member)
        return handle.read() if handle is not None else None


def fetch_debs(
    packages: list[str], release: BaseRelease, platform: ImagePlatform, cache: Path, reporter: Reporter, *, offline: bool = False
) -> FetchedDebs:
    """The ``.deb`` files of ``packages`` and their dependencies that the base image lacks, in the cache."""
    if not packages:
        return FetchedDebs((), ())
    if shutil.which("apt-get") is None:
        raise ExportError("system_packages are fetched with apt-get on this machine, and it has none: containerize on Debian or Ubuntu")
    apt = _PrivateApt(cache / "apt" / f"{release.codename}-{platform.architecture}", release, platform.architecture)
    where = f"Debian {release.codename} ({platform.architecture})"
    if offline:
        if not apt.has_lists():
            raise ExportError(f"--offline: no package lists of {where} in the cache yet; containerize once without --offline")
    else:
        with reporter.step(f"updating the package lists of {where} from {apt.mirror}..."):
            apt.run("update", what=f"updating the package lists of {where}")
    wanted = apt.resolve(packages, where)
    if wanted:
        with reporter.step(f"fetching {len(wanted)} .deb file(s) for {', '.join(packages)}..."):
            if not offline:
                apt.run("install", "--download-only", "--yes", *packages, what=f"downloading {', '.join(packages)}")
    files = tuple(apt.archive_file(name, version, arch) for name, version, arch in wanted)
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise ExportError(f"--offline: {', '.join(missing)} not in the cache; containerize once without --offline")
    reporter.info(f"system packages for {where}: {', '.join(path.name for path in files) or 'all in the base image already'}")
    return FetchedDebs(tuple(packages), files)


class _PrivateApt:
    """apt-get with its own sources, lists, cache and installed set: none of this machine's apt state is read or written."""

    def __init__(self, root: Path, release: BaseRelease, arch: str) -> None:
        self.root = root
        self.mirror, security = host_mirrors()
        for folder in ("lists/partial", "archives/partial", "parts"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        keyring = f"[signed-by={KEYRING}] " if KEYRING.is_file() else ""
        codename = release.codename
        (root / "sources.list").write_text(
            f"deb {keyring}{self.mirror} {codename} main\n"
            f"deb {keyring}{self.mirror} {codename}-updates main\n"
            f"deb {keyring}{security} {codename}-security main\n"
        )
        (root / "status").write_bytes(release.dpkg_status)
        self.options = [
            f"-oDir::Etc::SourceList={root / 'sources.list'}",
            f"-oDir::Etc::SourceParts={root / 'parts'}",
            f"-oDir::Etc::Preferences={root / 'preferences'}",
            f"-oDir::Etc::PreferencesParts={root / 'parts'}",
            f"-oDir::State::Lists={root / 'lists'}",
            f"-oDir::State::status={root / 'status'}",
            f"-oDir::Cache={root}",
            f"-oDir::Cache::Archives={root / 'archives'}",
            f"-oAPT::Architecture={arch}",
            f"-oAPT::Architectures={arch}",
            "-oAPT::Install-Recommends=false",
            "-oAPT::Sandbox::User=root",  # the private root may not be readable by _apt
            "-oDebug::NoLocking=true",  # its own folders: no lock on this machine's apt
            "-oAcquire::Languages=none",
            "-oAcquire::Retries=3",
        ]

    def has_lists(self) -> bool:
        return any(path.name.endswith("_Packages") for path in (self.root / "lists").iterdir())

    def run(self, *args: str, what: str) -> str:
        result = subprocess.run(
            ["apt-get", "-q", *self.options, *args], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
        )
        if result.returncode != 0:
            errors = [line[3:] for line in result.stderr.splitlines() if line.startswith("E: ")]
            unknown = [match for line in errors for match in re.findall(r"Unable to locate package (\S+)", line)]
            if unknown:
                raise ExportError(
                    f"system package {', '.join(repr(name) for name in unknown)} is not in Debian "
                    f"{self._codename()} at {self.mirror}: check the name (https://packages.debian.org/{self._codename()}/)"
                )
            raise ExportError(f"{what} failed: {'; '.join(errors) or result.stderr.strip()[-500:]}")
        return result.stdout

    def resolve(self, packages: list[str], where: str) -> list[tuple[str, str, str]]:
        """(name, version, arch) of every package apt would add to the base image, dependencies first."""
        plan = self.run("install", "--simulate", *packages, what=f"resolving {', '.join(packages)} for {where}")
        return [(m["name"], m["version"], m["arch"]) for m in map(_INST.match, plan.splitlines()) if m]

    def archive_file(self, name: str, version: str, arch: str) -> Path:
        # apt names its downloads NAME_VERSION_ARCH.deb, the epoch's ':' escaped as %3a
        return self.root / "archives" / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"

    def _codename(self) -> str:
        return self.root.name.rpartition("-")[0]


def host_mirrors() -> tuple[str, str]:
    """The Debian mirror and security mirror this machine's apt uses (or the env overrides, or deb.debian.org)."""
    uris = _host_source_uris()
    mirror = next((uri for uri in uris if uri.rstrip("/").endswith("/debian")), DEFAULT_MIRROR)
    security = next((uri for uri in uris if uri.rstrip("/").endswith("/debian-security")), DEFAULT_SECURITY_MIRROR)
    return (os.environ.get(MIRROR_ENV) or mirror).rstrip("/"), (os.environ.get(SECURITY_MIRROR_ENV) or security).rstrip("/")


def _host_source_uris() -> list[str]:
    """The URIs of this machine's enabled apt sources, one-line (.list) and deb822 (.sources) alike."""
    files = [HOST_SOURCES / "sources.list", *sorted((HOST_SOURCES / "sources.list.d").glob("*.list")),
             *sorted((HOST_SOURCES / "sources.list.d").glob("*.sources"))]
    uris = []
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            uris += [uri for line in text.splitlines() if line.startswith("URIs:") for uri in line[5:].split()]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 2 and words[0] == "deb":
                    uris.append(words[1])
    return uris
