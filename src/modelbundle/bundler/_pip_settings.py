"""pip's index settings, read the way pip reads them, and the same settings for uv.

uv reads none of pip's configuration (pip.conf files, ``PIP_*`` variables). A
machine where pip works (a mirror, extra indexes, a folder of wheels, a CA
bundle, a global constraint file) must lock the same way with uv, so the
settings pip would use for an install are read from ``pip config list`` and
passed to uv explicitly.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError
from ._atomic import write_text_atomically
from ._installer import last_lines, run_pip

#: pip's index when none is configured
PYPI_SIMPLE = "https://pypi.org/simple"
#: the sections pip reads for an install, weakest first (``:env:`` holds the PIP_* variables)
_SECTIONS = ("global", "install", ":env:")
_TRUE = ("y", "yes", "t", "true", "on", "1")
_FALSE = ("n", "no", "f", "false", "off", "0")


@dataclass(frozen=True)
class PipSettings:
    """What pip would use to find distributions; local paths are absolute."""

    index_url: str = PYPI_SIMPLE
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    #: pip's global constraint files (or URLs)
    constraints: tuple[str, ...] = ()
    #: a CA bundle file, or a folder of certificates
    cert: str | None = None
    trusted_hosts: tuple[str, ...] = ()

    def uv_args(self, *, no_index: bool = False) -> list[str]:
        """The uv options for these settings (constraints aside: see ``constraints_text``)."""
        args: list[str] = []
        for link in self.find_links:
            args += ["--find-links", link]
        for host in self.trusted_hosts:
            args += ["--allow-insecure-host", host]
        if no_index or self.no_index:
            return [*args, "--no-index"]
        if not self.extra_index_urls:
            return [*args, "--default-index", self.index_url]
        # pip takes the best version across every index, with the hashes of every file of it.
        # uv's nearest is unsafe-best-match, which on a tie keeps the files of the first index
        # that has the version: pip's own index goes first, so that a local mirror holding a
        # copy of one PyPI wheel does not narrow the lock to that wheel's hash. It is also the
        # default index, or uv would add PyPI behind a mirror that pip uses instead of it.
        for url in (self.index_url, *self.extra_index_urls):
            args += ["--index", url]
        return [*args, "--default-index", self.index_url, "--index-strategy", "unsafe-best-match"]

    def uv_env(self) -> dict[str, str]:
        """Environment variables for uv: pip's CA bundle (uv has its own roots otherwise)."""
        if self.cert is None:
            return {}
        return {"SSL_CERT_DIR" if Path(self.cert).is_dir() else "SSL_CERT_FILE": self.cert}

    def constraints_text(self) -> str:
        """pip's global constraints as one file, for either resolver (pip-compile ignores pip's setting too).

        The files' text is copied, so the lock's ``# via`` notes name the copy, never a machine's path.
        """
        parts = []
        for source in self.constraints:
            if "://" in source:
                parts.append(f"-c {source}\n")
                continue
            try:
                parts.append(Path(source).read_text())
            except OSError as exc:
                raise BuildError(
                    f"pip's constraint file {source} (PIP_CONSTRAINT or `constraint` in pip.conf) cannot be read: "
                    f"{exc.strerror or exc}"
                ) from None
        return "".join(text if text.endswith("\n") else text + "\n" for text in parts if text)


def read_pip_settings(
    env: Mapping[str, str] | None = None, cwd: Path | None = None, *, cache_dir: Path | None = None
) -> PipSettings:
    """The settings pip would use here: ``pip config list`` (files and PIP_* variables, the variables winning).

    ``cache_dir``: keep pip's answer there, keyed by what it depends on (the config files pip
    reads, their sizes and mtimes, the PIP_* variables, this interpreter and its pip), so that a
    build whose lock is cached does not start pip (a third of a second) to learn nothing new.
    """
    environ = dict(os.environ if env is None else env)
    # the key lists the Linux config files: elsewhere pip reads others, so it is asked every time
    cacheable = cache_dir is not None and sys.platform.startswith("linux")
    cached = cache_dir / "pip-config" / f"{_listing_key(environ)}.txt" if cache_dir is not None and cacheable else None
    listing = _read(cached) if cached is not None else None
    if listing is None:
        result = run_pip(["config", "list"], env=environ)
        if result.returncode != 0:
            raise BuildError(f"could not read pip's configuration (pip config list): {last_lines(result.stderr, 2)}")
        listing = result.stdout
        if cached is not None and not _has_credentials(listing):  # a password in an index URL never goes to disk
            write_text_atomically(cached, listing, mode=0o600)  # readable by this user only
    return parse_pip_config(listing, cwd or Path.cwd())


def pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """Every file pip would read its configuration from, whether it exists or not."""
    home = Path(env.get("HOME", str(Path.home())))
    xdg_dirs = (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
    files = [
        *(Path(directory) / "pip" / "pip.conf" for directory in xdg_dirs), Path("/etc/pip.conf"),
        Path(sys.prefix) / "pip.conf", home / ".pip" / "pip.conf",
        Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf",
    ]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def _listing_key(env: Mapping[str, str]) -> str:
    """What ``pip config list`` prints depends on: the files pip reads and the variables that name or override them."""
    files = pip_config_files(env)
    spec = importlib.util.find_spec("pip")
    if spec is not None and spec.origin:
        files.append(Path(spec.origin))  # another pip may read or print its configuration differently
    variables = sorted(
        (name, value) for name, value in env.items()
        if name.startswith("PIP_") or name in ("HOME", "XDG_CONFIG_DIRS", "XDG_CONFIG_HOME", "VIRTUAL_ENV")
    )
    payload = [sys.executable, sys.prefix, variables, [[str(path), *_stat(path)] for path in files]]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:32]


def _stat(path: Path) -> list[int]:
    try:
        stat = path.stat()
    except OSError:
        return []
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _has_credentials(listing: str) -> bool:
    return re.search(r"://[^/\s'\"]*@", listing) is not None


def parse_pip_config(listing: str, cwd: Path) -> PipSettings:
    """Settings from ``pip config list`` output (``global.find-links='/opt/wheels'`` lines)."""
    sections: dict[str, dict[str, str]] = {name: {} for name in _SECTIONS}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in sections:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, str) and value:  # pip ignores empty values: PIP_X="" does not unset a file's x
            sections[section][name] = value
    merged: dict[str, str] = {}
    for name in _SECTIONS:
        merged.update(sections[name])

    def paths(values: list[str]) -> tuple[str, ...]:
        return tuple(_local_path(value, cwd) for value in values)

    no_index = merged.get("no-index", "").lower()
    if no_index and no_index not in _TRUE + _FALSE:
        raise BuildError(f"pip's no-index setting is {no_index!r}, which pip does not read as true or false")
    return PipSettings(
        index_url=merged.get("index-url", PYPI_SIMPLE),
        extra_index_urls=tuple(merged.get("extra-index-url", "").split()),
        find_links=paths(merged.get("find-links", "").split()),
        no_index=no_index in _TRUE,
        constraints=paths(merged.get("constraint", "").split()),
        cert=_local_path(merged["cert"], cwd) if "cert" in merged else None,
        trusted_hosts=tuple(merged.get("trusted-host", "").split()),
    )


def _local_path(value: str, cwd: Path) -> str:
    """URLs as they are; paths absolute (uv runs in a folder of its own, where a relative path means nothing)."""
    if "://" in value:
        return value
    return os.path.normpath(cwd / Path(value).expanduser())
