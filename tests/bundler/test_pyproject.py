"""``[tool.modelbundle]`` in pyproject.toml: ``bundle build`` with no TARGET; flags still win."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelbundle import __version__
from modelbundle.bundler import resolve_build_options
from modelbundle.errors import BuildError

from ._helpers import Built, build_tag, bundle_path, cli, failed, manifest

GREETER = '''\
from modelbundle import Artifact, Service, api


class Greeter(Service):
    greeting = Artifact("file")  # bound in [tool.modelbundle] artifacts

    def setup(self) -> None:
        self.text = self.greeting.read_text().strip()

    @api
    def greet(self, name: str) -> str:
        return f"{self.text}, {name}"
'''


def _project(root: Path, section: str) -> Path:
    root.mkdir()
    (root / "app.py").write_text(GREETER)
    (root / "data").mkdir()
    (root / "data" / "greeting.txt").write_text("Hello\n")
    (root / "templates").mkdir()
    (root / "templates" / "page.txt").write_text("<p>{greeting}</p>\n")
    (root / "templates" / "draft.txt").write_text("unfinished\n")
    (root / "pyproject.toml").write_text(f'[project]\nname = "greeter-project"\nversion = "0"\n\n[tool.modelbundle]\n{section}')
    return root


def test_a_pyproject_section_builds_without_a_target(iris: Built, tmp_path: Path, home: Path) -> None:
    # the same direct requirements as the iris example, so the lock is already in the cache
    packages = [line for line in iris.manifest()["dependencies"]["requirements"] if not line.startswith("modelbundle==")]
    project = _project(tmp_path / "greeter", f"""\
service = "app.py:Greeter"
name = "greeter"
labels = {{ team = "ml", stage = "dev" }}
include = ["templates/*.txt"]
exclude = ["templates/draft.txt"]
packages = {packages!r}
artifacts = {{ greeting = "data/greeting.txt" }}
""".replace("'", '"'))
    tag = build_tag("--label", "stage=test", home=home, cwd=project)
    assert tag.startswith("greeter:")
    data = manifest(home, tag)
    assert data["service"] == "app:Greeter"
    # the flag wins over the file, key by key (and every build records that the secret scan ran)
    assert data["labels"] == {"stage": "test", "team": "ml", "ai.modelbundle.secret-scan": "clean"}
    assert data["dependencies"]["requirements"] == sorted([*packages, f"modelbundle=={__version__}"])
    [greeting] = data["artifacts"]
    assert (greeting["name"], greeting["kind"], greeting["meta"]) == ("greeting", "file", {"filename": "greeting.txt"})
    path = bundle_path(home, tag)
    assert (path / "artifacts" / "greeting" / "greeting.txt").read_text() == "Hello\n"
    src = path / "src"
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()) == ["app.py", "templates/page.txt"]

    # run from a subfolder, the same file applies only when it is in the current folder
    error = failed(cli("build", home=home, cwd=project / "templates"))
    assert "no service to build: pass TARGET (module:Class or path/file.py:Class) or set service in [tool.modelbundle]" in error


def test_an_unknown_key_is_a_clear_error(tmp_path: Path, home: Path) -> None:
    project = _project(tmp_path / "greeter", 'servce = "app.py:Greeter"\nname = "greeter"\n')
    message = r"pyproject\.toml: unknown keys in \[tool\.modelbundle\]: servce \(known: .*\bservice\b.*\)"
    with pytest.raises(BuildError, match=message):
        resolve_build_options({}, cwd=project)
    assert re.search(message, failed(cli("build", home=home, cwd=project)))
    assert not (home / "bundles").exists()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('labels = "team=ml"\n', r"build option labels: Input should be a valid dictionary"),
        ("service = \n", r"pyproject\.toml is not valid TOML"),
        ('resolver = "poetry"\n', r"build option resolver: Input should be 'auto', 'uv' or 'pip-tools'"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, section: str, message: str) -> None:
    project = _project(tmp_path / "greeter", section)
    with pytest.raises(BuildError, match=message):
        resolve_build_options({}, cwd=project)


def test_build_options_precedence_flag_over_env_over_pyproject(tmp_path: Path) -> None:


    (tmp_path / "pyproject.toml").write_text(
        '[tool.modelbundle]\nname = "from-file"\nversion = "v-file"\npython_packages = ["a==1"]\npackages = ["b==2"]\n'
    )
    env = {"MODELBUNDLE_BUILD_NAME": "from-env", "MODELBUNDLE_BUILD_VENDOR_WHEELS": "true", "MODELBUNDLE_VERSION": "ignored"}
    options = resolve_build_options({"name": None, "version": "v-flag"}, tmp_path, env=env)
    assert (options.name, options.version, options.vendor_wheels) == ("from-env", "v-flag", True)
    assert options.python_packages == ["a==1", "b==2"]  # both spellings of the key are read
    assert resolve_build_options({"name": "from-flag"}, tmp_path, env=env).name == "from-flag"
    assert resolve_build_options({}, tmp_path, env={}).name == "from-file"


def test_the_resolver_option_flag_over_env_over_pyproject(tmp_path: Path) -> None:
    assert resolve_build_options({}, tmp_path, env={}).resolver == "auto"
    (tmp_path / "pyproject.toml").write_text('[tool.modelbundle]\nresolver = "pip-tools"\n')
    assert resolve_build_options({}, tmp_path, env={}).resolver == "pip-tools"
    env = {"MODELBUNDLE_BUILD_RESOLVER": "uv"}
    assert resolve_build_options({"resolver": None}, tmp_path, env=env).resolver == "uv"
    assert resolve_build_options({"resolver": "auto"}, tmp_path, env=env).resolver == "auto"
