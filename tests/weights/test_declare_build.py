"""Declaring weights by reference, building a bundle that records them, pinning them, loading them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from fixtures.cli import cli, failed, ok
from modelbundle import Artifact
from modelbundle.errors import DefinitionError

DIGEST = "a" * 64

SERVICE = '''
from modelbundle import Artifact, Service, api


class Weighted(Service):
    weights = Artifact("file", uri={uri!r}{extra})
    vocab = Artifact("dir", uri={dir_uri!r})

    def setup(self):
        import hashlib

        self.weights_digest = hashlib.sha256(self.weights.read_bytes()).hexdigest()

    @api
    def digest(self, text: str) -> str:
        return self.weights_digest + " " + (self.vocab / "words.txt").read_text()
'''


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uri": "http://example.com/w.bin", "sha256": DIGEST}, r"must start with one of s3://, oci://, file://"),
        ({"uri": "s3://bucket-only"}, r"an S3 reference is s3://bucket/key"),
        ({"uri": "file://relative/w.bin"}, r"file:///absolute/path"),
        ({"uri": "s3://b/k", "sha256": "ABC"}, r"a digest is 64 lowercase hex digits"),
        ({"uri": "oci://127.0.0.1:5000/repo:latest"}, r"oci://registry/repository@sha256:<64 hex digits>"),
        ({"uri": "s3://b/k", "size": -1}, r"a size is a whole number of bytes"),
        ({"sha256": DIGEST}, r"give its uri=... too"),
        ({"uri": "s3://b/k", "path": "w.bin"}, r"give one, a copied file \(path\) or a reference \(uri\)"),
    ],
)
def test_a_bad_reference_is_refused_when_declared(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as caught:
        Artifact("file", **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_only_file_and_dir_artifacts_are_references() -> None:
    with pytest.raises(DefinitionError, match=r"only 'file' and 'dir' artifacts may be references"):
        Artifact("sklearn", uri="s3://b/k", sha256=DIGEST)
    assert Artifact("file", uri=f"oci://127.0.0.1:5000/w@sha256:{DIGEST}").sha256 == DIGEST  # the URI names it


def test_build_records_references_pin_fills_digests_and_load_fetches(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    (project / "vocab").mkdir(parents=True)
    data = os.urandom(2 * 1024 * 1024 + 3)
    (tmp_path / "weights.bin").write_bytes(data)
    (project / "vocab" / "words.txt").write_text("hello")
    digest = hashlib.sha256(data).hexdigest()
    uri, dir_uri = (tmp_path / "weights.bin").as_uri(), (project / "vocab").as_uri()
    (project / "weighted.py").write_text(SERVICE.format(uri=uri, dir_uri=dir_uri, extra=""))

    # no digest, no pin, no --fetch-digest: refused, naming the ways out
    error = failed(cli("build", "weighted.py:Weighted", home=home, cwd=project))
    assert "artifact 'weights' references" in error and "bundle weights pin" in error and "--fetch-digest" in error

    pinned = ok(cli("weights", "pin", "weighted.py:Weighted", home=home, cwd=project)).stdout
    assert f"sha256:{digest}" in pinned
    lock = json.loads((project / "weights.lock").read_text())["weights"]
    assert (lock[uri]["sha256"], lock[uri]["size"]) == (digest, len(data))
    assert [f["path"] for f in lock[dir_uri]["files"]] == ["words.txt"]

    tag = ok(cli("build", "weighted.py:Weighted", "-o", "tag", home=home, cwd=project)).stdout.strip()
    name, _, version = tag.partition(":")
    bundle = home / "bundles" / name / version
    entries = {a["name"]: a for a in json.loads((bundle / "bundle.json").read_text())["artifacts"]}
    assert entries["weights"]["ref"] == {"uri": uri, "sha256": digest, "size": len(data), "kind": "file"}
    assert entries["vocab"]["ref"]["files"] == [
        {"path": "words.txt", "sha256": hashlib.sha256(b"hello").hexdigest(), "size": 5}
    ]
    # nothing copied: each artifact folder holds its artifact.json alone
    assert sorted(p.name for p in (bundle / "artifacts" / "weights").iterdir()) == ["artifact.json"]
    assert not list(home.glob("blobs/sha256/*"))  # and nothing fetched at build

    # loading fetches into the cache and gives the service the verified Path
    script = f"import modelbundle; print(modelbundle.load({tag!r}).digest('x'))"
    loaded = ok(cli_python(script, home)).stdout.split()
    assert loaded == [digest, "hello"]
    assert (home / "blobs" / "sha256" / digest).read_bytes() == data

    # the digest declared, the directory's computed by --fetch-digest: the same references as pinned
    (project / "weights.lock").unlink()
    (project / "weighted.py").write_text(SERVICE.format(uri=uri, dir_uri=dir_uri, extra=f", sha256={digest!r}"))
    again = ok(cli("build", "weighted.py:Weighted", "--fetch-digest", "-o", "tag", home=home, cwd=project)).stdout.strip()
    rebuilt = json.loads((home / "bundles" / name / again.partition(":")[2] / "bundle.json").read_text())["artifacts"]
    assert {a["name"]: a["ref"] for a in rebuilt} == {n: a["ref"] for n, a in entries.items()}


def cli_python(script: str, home: Path) -> object:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "MODELBUNDLE_HOME": str(home)},
        capture_output=True, text=True, timeout=300,
    )
