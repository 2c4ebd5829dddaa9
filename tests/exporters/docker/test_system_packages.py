"""``system_packages``: recorded by ``bundle build``, fetched on this machine for the base image's Debian release,
and installed by a build that has no network.

The service loads libgomp (OpenMP's runtime, a system library the base image
lacks) with ctypes in ``setup()``, so its image serves only if the package was installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pytest

from fixtures.cli import cli, failed, ok
from fixtures.docker import ImageSession, running
from fixtures.session import PREFIX
from modelbundle.bundler import LocalStore, Reporter, StoredBundle
from modelbundle.exporters.docker import ContainerizeOptions, containerize

SERVICE = '''\
import ctypes

from modelbundle import Service, api


class Threads(Service):
    """How many threads OpenMP would use: libgomp, a Debian package, loaded from the system."""

    def setup(self):
        self.gomp = ctypes.CDLL("libgomp.so.1")

    @api
    def threads(self, x: list[float]) -> int:
        return int(self.gomp.omp_get_max_threads())
'''
PYPROJECT = """\
[tool.modelbundle]
service = "threads.py:Threads"
system_packages = ["libgomp1"]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("threads-project")
    (root / "threads.py").write_text(SERVICE)
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


@pytest.fixture(scope="module")
def threads_bundle(session: ImageSession, project: Path) -> StoredBundle:
    """Built by `bundle build` with no TARGET: the service and the system packages come from pyproject.toml."""
    tag = ok(cli("build", "-o", "tag", home=session.home, cwd=project)).stdout.strip().splitlines()[-1]
    return LocalStore(session.home).get(tag)


def test_the_bundle_records_its_system_packages(threads_bundle: StoredBundle) -> None:
    assert json.loads((threads_bundle.path / "bundle.json").read_text())["system_packages"] == ["libgomp1"]


def test_the_image_has_the_library_and_was_built_with_no_network(
    session: ImageSession, threads_bundle: StoredBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the base image lacks the library: the image can only have it from the bundle's system packages
    listing = session.engine.containers.run(session.base_image, ["sh", "-c", "ldconfig -p | grep -c libgomp || true"], remove=True)
    assert listing.strip() == b"0"

    # every build the engine is asked for is recorded on its way to the real engine
    builds: list[dict[str, Any]] = []
    original = docker.api.build.BuildApiMixin.build

    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        builds.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(docker.api.build.BuildApiMixin, "build", recorded)
    tag = f"{PREFIX}/threads:{threads_bundle.manifest.version}"
    session.tags.append(tag)
    # --no-cache: the venv image of this lock may be in the engine from an earlier run (kept as a
    # cache by design); this test must see both builds happen, each with no network
    options = ContainerizeOptions(tag=tag, base_image=session.base_image, no_cache=True)
    result = containerize(threads_bundle, options, LocalStore(session.home), Reporter(quiet=True))
    assert result.venv == "built"
    assert len(builds) == 2 and all(build["network_mode"] == "none" for build in builds)  # the venv image, then the image

    with running(session.engine, tag) as container:
        container.wait_ready()
        answer = container.post("/threads", json={"x": [1.0]})
        assert answer.status_code == 200, container.logs
        assert answer.json() >= 1  # OpenMP answered through the system library
        code, output = container.container.exec_run(["sh", "-c", "ldconfig -p | grep libgomp.so.1; dpkg-query -W -f '${Status}' libgomp1"])
        assert code == 0, output.decode()
        assert "libgomp.so.1 (libc6,x86-64)" in output.decode() and output.decode().endswith("install ok installed")


def test_an_unknown_system_package_is_one_line(session: ImageSession, project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    tag = ok(cli("build", str(project / "threads.py:Threads"), "--system-package", "no-such-package-mb", "-o", "tag",
                 home=home, cwd=tmp_path)).stdout.strip().splitlines()[-1]
    error = failed(cli("containerize", tag, "--base-image", session.base_image, "-t", f"{PREFIX}/nosuch:1", home=home))
    assert error.startswith("error: system package 'no-such-package-mb' is not in Debian bookworm at http")


def test_a_bad_package_name_fails_the_build(project: Path, tmp_path: Path) -> None:
    error = failed(cli("build", str(project / "threads.py:Threads"), "--system-package", "libgomp1=12.2", home=tmp_path / "home", cwd=tmp_path))
    assert "system package 'libgomp1=12.2' is not a Debian package name" in error


def test_the_mirrors_are_the_ones_this_machines_apt_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelbundle.exporters.docker import _system_packages

    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# deb http://old.example/debian bookworm main\ndeb [arch=amd64] https://packages.example/apt stable main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.example/debian-security/\n"
    )
    monkeypatch.setattr(_system_packages, "HOST_SOURCES", tmp_path)
    monkeypatch.delenv(_system_packages.MIRROR_ENV, raising=False)
    monkeypatch.delenv(_system_packages.SECURITY_MIRROR_ENV, raising=False)
    assert _system_packages.host_mirrors() == ("http://mirror.example/debian", "http://mirror.example/debian-security")
    monkeypatch.setenv(_system_packages.MIRROR_ENV, "http://local.example/debian/")
    assert _system_packages.host_mirrors()[0] == "http://local.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()  # an Ubuntu machine, say: Debian's own mirrors
    monkeypatch.delenv(_system_packages.MIRROR_ENV)
    assert _system_packages.host_mirrors() == (_system_packages.DEFAULT_MIRROR, _system_packages.DEFAULT_SECURITY_MIRROR)
