"""What goes into src/: imported modules and --include globs, minus the ignore rules; secrets are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelbundle.bundler._ignore import IgnoreRules, glob_files
from modelbundle.bundler._secrets import find_secrets, looks_like_secret

from ._helpers import PLAIN_SERVICE, Prebuilt, build_tag, bundle_path, cli, manifest, ok


@pytest.mark.parametrize(
    "path",
    [
        ".git/config", ".venv/lib/python3.11/site.py", "venv/bin/activate", "pkg/__pycache__/m.cpython-311.pyc",
        "m.pyc", ".env", "config/.env.production", "id_rsa", "keys/id_ed25519", "certs/server.pem", "tls.key",
        ".aws/credentials", ".ssh/known_hosts", ".netrc", "build/lib/x.py", "dist/x.whl", "x.egg-info/PKG-INFO",
    ],
)
def test_left_out_by_default(tmp_path: Path, path: str) -> None:
    assert IgnoreRules(tmp_path).ignored(Path(path))


@pytest.mark.parametrize("path", ["service.py", "data/iris.csv", "environment.py", "envs/a.txt", "keys.py", "pkg/model.json"])
def test_kept_by_default(tmp_path: Path, path: str) -> None:
    assert not IgnoreRules(tmp_path).ignored(Path(path))


def test_bundleignore_and_excludes_add_rules(tmp_path: Path) -> None:
    (tmp_path / ".bundleignore").write_text("# scratch work\nscratch/\n*.log\n!keep.log\n")
    rules = IgnoreRules(tmp_path, ["notes.md"])
    assert rules.ignored(Path("scratch/a.py")) and rules.ignored(Path("run.log")) and rules.ignored(Path("notes.md"))
    assert not rules.ignored(Path("keep.log")) and not rules.ignored(Path("service.py"))


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True), ("prod.env", True), (".env.local", True), ("id_rsa", True), ("id_rsa.pub", True),
        ("server.pem", True), ("tls.key", True), ("credentials", True), (".aws/config", True), ("store.p12", True),
        ("credentials.json", True), ("config/secrets.yaml", True), ("Secrets.toml", True), ("gcp/service-account-prod.json", True),
        ("client_secret_123.apps.json", True), (".git-credentials", True), ("deploy/.kube/config", True), ("infra/prod.tfstate", True),
        ("service.py", False), ("credentials.py", False), ("environment.yml", False), ("keys.json", False), ("secrets.py", False),
        ("docs/secrets.md", False), ("config/settings.yaml", False),
    ],
)
def test_what_looks_like_a_secret(path: str, secret: bool) -> None:
    assert looks_like_secret(Path(path)) is secret


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n", "a private key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\n", "a private key"),
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", "an AWS access key id"),
        ("TOKEN = 'ghp_" + "a1B2" * 9 + "'\n", "a GitHub token"),
        ("key: AIza" + "x" * 35 + "\n", "a Google API key"),
        ("HF_TOKEN=hf_" + "Ab1" * 12 + "\n", "a Hugging Face token"),
        ("-----BEGIN PUBLIC KEY-----\n", None), ("AKIA is a prefix; AKIAshort is not a key\n", None), ("x = 1\n", None),
    ],
)
def test_what_holds_a_secret(tmp_path: Path, content: str, kind: str | None) -> None:
    (tmp_path / "notes.txt").write_text(content)
    assert find_secrets(tmp_path, [Path("notes.txt")]) == ([f"notes.txt ({kind})"] if kind else [])


def test_include_never_follows_links_out_of_the_project(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "home").mkdir(parents=True)
    (outside / "home" / "token.txt").write_text("secret")
    (outside / "passwd").write_text("root:x:0:0")
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "table.csv").write_text("a\n")
    (root / "data" / "passwd").symlink_to(outside / "passwd")
    (root / "home").symlink_to(outside / "home", target_is_directory=True)
    (root / "table-link.csv").symlink_to(root / "data" / "table.csv")  # inside: kept
    left_out: set[Path] = set()
    found = glob_files(root, ["**", "data", "home"], IgnoreRules(root), left_out)
    assert sorted(p.as_posix() for p in found) == ["data/table.csv", "table-link.csv"]
    assert {p.as_posix() for p in left_out} >= {"data/passwd", "home/token.txt"}


def _project(root: Path) -> Path:
    files = {
        "plain.py": PLAIN_SERVICE.replace("from modelbundle import", "import helper\nfrom modelbundle import"),
        "helper.py": "GREETING = 'hi'\n",
        "data/table.csv": "a,b\n1,2\n",
        "data/scratch/tmp.bin": "x",
        "notes.log": "log",
        "README.md": "# plain",
        ".git/config": "[core]",
        ".venv/lib/site.py": "",
        "__pycache__/plain.cpython-311.pyc": "",
        "pkg/__pycache__/x.cpython-311.pyc": "",
        ".env": "TOKEN=1",
        "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----",
        "credentials": "[default]",
        "credentials.json": '{"token": "x"}',
        "config/secrets.yaml": "password: x\n",
        "config/settings.yaml": "region: eu\n",
        "notes.txt": "ask ops for AKIAIOSFODNN7EXAMPLE\n",
        ".bundleignore": "data/scratch/\n*.log\n!.env\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_glob_files_honours_the_rules(tmp_path: Path) -> None:
    root = _project(tmp_path)
    found = glob_files(root, ["**"], IgnoreRules(root, ["README.md"]))
    assert sorted(p.as_posix() for p in found) == [
        ".bundleignore", ".env", "config/secrets.yaml", "config/settings.yaml", "credentials", "credentials.json", "data/table.csv",
        "helper.py", "notes.txt", "plain.py",
    ]
    assert sorted(p.as_posix() for p in glob_files(root, ["data"], IgnoreRules(root))) == ["data/table.csv"]


def test_build_copies_included_files_and_names_the_secrets(prebuilt: Prebuilt, tmp_path: Path, home: Path) -> None:
    project = _project(tmp_path / "project")
    result = ok(cli("build", "plain.py:Plain", "--include", "**", "--exclude", "README.md", "-o", "tag", home=home, cwd=project))
    tag = result.stdout.strip()
    src = bundle_path(home, tag) / "src"
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()) == [
        ".bundleignore", ".env", "config/secrets.yaml", "config/settings.yaml", "credentials", "credentials.json", "data/table.csv",
        "helper.py", "notes.txt", "plain.py",
    ]
    # un-ignored with !.env, credentials files, a key in a text file: still shipped, but named in one warning
    named = ".env, config/secrets.yaml, credentials, credentials.json, notes.txt (an AWS access key id)"
    assert f"warning: these files look like secrets and will be in the bundle: {named} (exclude" in result.stderr
    assert "id_rsa" not in result.stderr and "settings.yaml" not in result.stderr
    assert manifest(home, tag)["labels"] == {"ai.modelbundle.secret-scan": f"flagged: {named}"}


def test_without_includes_only_imported_modules_are_copied(prebuilt: Prebuilt, tmp_path: Path, home: Path) -> None:
    project = _project(tmp_path / "project")
    tag = build_tag("plain.py:Plain", home=home, cwd=project)
    src = bundle_path(home, tag) / "src"
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()) == ["helper.py", "plain.py"]
    assert manifest(home, tag)["labels"] == {"ai.modelbundle.secret-scan": "clean"}  # the check ran and found nothing
