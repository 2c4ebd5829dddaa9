"""pip's settings, read with the real ``pip config list``, and the uv arguments they become."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from modelbundle.bundler._pip_settings import PYPI_SIMPLE, PipSettings, read_pip_settings
from modelbundle.errors import BuildError


@pytest.fixture
def pip_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Write a pip.conf and point PIP_CONFIG_FILE at it; no PIP_* variable, user or site file of the machine's.

    (/etc/pip.conf is read whatever the environment says; each test sets the keys it checks.)
    """
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS"):
        monkeypatch.setenv(name, str(tmp_path / "empty" / name))
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> Path:
        path = tmp_path / "pip.conf"
        path.write_text(text)
        monkeypatch.setenv("PIP_CONFIG_FILE", str(path))
        return path

    return write


def test_without_settings_uv_uses_pypi_like_pip(pip_conf: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip then reads no file at all
    settings = read_pip_settings()
    assert settings == PipSettings()
    assert settings.uv_args() == ["--default-index", PYPI_SIMPLE]
    assert (settings.uv_env(), settings.constraints_text()) == ({}, "")


def test_a_pip_conf_becomes_uv_arguments(pip_conf: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "pins.txt").write_text("torch<=2.14.1\nnot-in-any-closure==1.0")
    (tmp_path / "ca.pem").write_text("not read here\n")
    pip_conf(
        "[global]\n"
        "index-url = https://mirror.example/simple\n"
        "extra-index-url = file:///opt/pypi/simple\n    https://private.example/simple\n"
        "find-links = wheels\n    ~/more-wheels\n    https://example.org/links.html\n"
        "trusted-host = mirror.example private.example:8443\n"
        "constraint = pins.txt\n"
        "cert = ca.pem\n"
    )
    settings = read_pip_settings()
    home = os.environ["HOME"]
    assert settings.uv_args() == [
        # relative paths are the current folder's, as pip reads them (uv runs elsewhere)
        "--find-links", str(tmp_path / "wheels"), "--find-links", f"{home}/more-wheels",
        "--find-links", "https://example.org/links.html",
        "--allow-insecure-host", "mirror.example", "--allow-insecure-host", "private.example:8443",
        # pip's own index first: on a tie uv keeps the first index's files
        "--index", "https://mirror.example/simple", "--index", "file:///opt/pypi/simple",
        "--index", "https://private.example/simple",
        "--default-index", "https://mirror.example/simple", "--index-strategy", "unsafe-best-match",
    ]
    assert settings.uv_env() == {"SSL_CERT_FILE": str(tmp_path / "ca.pem")}
    # a copy, so the lock's notes never name a machine's (or a temporary) path; a name outside the closure is fine
    assert settings.constraints_text() == "torch<=2.14.1\nnot-in-any-closure==1.0\n"


def test_offline_keeps_the_local_sources_only(pip_conf: Callable[[str], Path], tmp_path: Path) -> None:
    pip_conf("[global]\nindex-url = https://mirror.example/simple\nfind-links = /opt/wheels\ntrusted-host = mirror.example\n")
    assert read_pip_settings().uv_args(no_index=True) == [
        "--find-links", "/opt/wheels", "--allow-insecure-host", "mirror.example", "--no-index",
    ]


def test_pip_variables_win_over_files_as_in_pip(pip_conf: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    pip_conf(
        "[global]\nindex-url = https://global.example/simple\nfind-links = /from/global\n"
        "extra-index-url = https://extra.example/simple\ntrusted-host = global.example\n"
        "[install]\nindex-url = https://install.example/simple\n"
    )
    settings = read_pip_settings()
    assert (settings.index_url, settings.find_links) == ("https://install.example/simple", ("/from/global",))

    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/from/env /and/this")
    monkeypatch.setenv("PIP_TRUSTED_HOST", "env.example")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")  # pip skips empty values: the file's extra index stays
    settings = read_pip_settings()
    assert settings.index_url == "https://env.example/simple"
    assert settings.find_links == ("/from/env", "/and/this")
    assert settings.trusted_hosts == ("env.example",)
    assert settings.extra_index_urls == ("https://extra.example/simple",)


def test_pip_environment_variables_alone(pip_conf: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    (tmp_path / "c.txt").write_text("numpy<3\n")
    (tmp_path / "certs").mkdir()
    monkeypatch.setenv("PIP_CONSTRAINT", "c.txt")
    monkeypatch.setenv("PIP_CERT", str(tmp_path / "certs"))
    monkeypatch.setenv("PIP_NO_INDEX", "yes")
    monkeypatch.setenv("PIP_FIND_LINKS", "file:///srv/wheels")
    settings = read_pip_settings()
    assert settings.uv_args() == ["--find-links", "file:///srv/wheels", "--no-index"]
    assert settings.uv_env() == {"SSL_CERT_DIR": str(tmp_path / "certs")}
    assert settings.constraints_text() == "numpy<3\n"


def test_a_missing_constraint_file_is_a_build_error(pip_conf: Callable[[str], Path], tmp_path: Path) -> None:
    pip_conf("[global]\nconstraint = /nowhere/constraints.txt\n")
    with pytest.raises(BuildError, match=r"^pip's constraint file /nowhere/constraints\.txt \(PIP_CONSTRAINT or `constraint` in pip\.conf\) cannot be read: No such file or directory$"):
        read_pip_settings().constraints_text()


def test_pips_answer_is_cached_until_a_config_file_or_variable_changes(
    pip_conf: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelbundle.bundler import _pip_settings

    runs: list[list[str]] = []
    real_run_pip = _pip_settings.run_pip

    def counting(args: list[str], **kwargs: object) -> object:
        runs.append(args)
        return real_run_pip(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_pip_settings, "run_pip", counting)
    cache = tmp_path / "cache"
    conf = pip_conf("[global]\nindex-url = https://one.example/simple\n")
    assert read_pip_settings(cache_dir=cache).index_url == "https://one.example/simple"
    assert read_pip_settings(cache_dir=cache).index_url == "https://one.example/simple"
    assert len(runs) == 1  # the second build starts no pip

    conf.write_text("[global]\nindex-url = https://two.example/simple\n")
    os.utime(conf, ns=(conf.stat().st_atime_ns, conf.stat().st_mtime_ns + 1_000_000_000))
    assert read_pip_settings(cache_dir=cache).index_url == "https://two.example/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "https://three.example/simple")
    assert read_pip_settings(cache_dir=cache).index_url == "https://three.example/simple"
    assert len(runs) == 3


def test_a_listing_with_a_password_is_never_cached_and_others_are_private(
    pip_conf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    pip_conf("[global]\nindex-url = https://one.example/simple\n")
    read_pip_settings(cache_dir=cache)
    [written] = (cache / "pip-config").iterdir()
    assert written.stat().st_mode & 0o077 == 0  # readable by this user only
    monkeypatch.setenv("PIP_INDEX_URL", "https://ci:s3cret@private.example/simple")
    assert read_pip_settings(cache_dir=cache).index_url == "https://ci:s3cret@private.example/simple"
    assert [p.name for p in (cache / "pip-config").iterdir()] == [written.name]
    assert not any("s3cret" in p.read_text() for p in (cache / "pip-config").iterdir())
