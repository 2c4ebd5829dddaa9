"""Acceptance on moto's S3 server: a 300 MB random file referenced by a bundle, through a proxy that counts.

One test, one upload: an interrupted fetch resumes with a ranged GET for only the
rest; the blob is cached and verified (the service hashes its Path); a second
bundle with the same digest downloads nothing; offline, the cache is enough; a
tampered object is refused and nothing of it is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures.bundles import build_in_process
from stores._moto_fixture import MotoS3

from ._proxy import CountingProxy
from .conftest import BigFile

SERVICE = '''
from modelbundle import Artifact, Service, api


class {name}(Service):
    weights = Artifact("file", uri={uri!r}, sha256={sha256!r}, size={size})

    @api
    def digest(self, text: str) -> str:
        import hashlib

        with open(self.weights, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
'''


def _load(tag: str, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``modelbundle.load(tag).digest()`` in a fresh process: the loader ``bundle serve`` uses."""
    script = f"import modelbundle; print(modelbundle.load({tag!r}).digest('x'))"
    return subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "MODELBUNDLE_HOME": str(home), **env},
        capture_output=True, text=True, timeout=600,
    )


def test_s3_weights_are_fetched_once_resumed_verified_and_served_offline(
    moto_s3: MotoS3, big_file: BigFile, tmp_path: Path
) -> None:
    moto_s3.client().upload_file(str(big_file.path), moto_s3.bucket, "models/big.bin")
    proxy = CountingProxy(int(moto_s3.endpoint_url.rsplit(":", 1)[1]))
    env = {"AWS_ENDPOINT_URL": proxy.endpoint_url}
    home, uri = tmp_path / "home", f"s3://{moto_s3.bucket}/models/big.bin"
    tags = []
    for name in ("First", "Second"):
        project = tmp_path / name.lower()
        project.mkdir()
        (project / "svc.py").write_text(SERVICE.format(name=name, uri=uri, sha256=big_file.sha256, size=big_file.size))
        tags.append(build_in_process(f"{project}/svc.py:{name}", project, home).tag)
    blob = home / "blobs" / "sha256" / big_file.sha256
    partial = blob.with_name(blob.name + ".partial")

    # interrupted a third of the way: a clean error, a partial kept, nothing under the final name
    proxy.cut_after = big_file.size // 3
    failed = _load(tags[0], home, env)
    assert failed.returncode != 0 and not blob.exists()
    assert "Traceback" not in failed.stderr.splitlines()[-1]
    kept = partial.stat().st_size
    assert 0 < kept <= big_file.size // 3

    # resumed: one ranged GET from where it stopped, and only the rest sent
    proxy.cut_after, proxy.sent, proxy.ranges = None, 0, []
    first = _load(tags[0], home, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == big_file.sha256  # the service read the verified file
    assert proxy.ranges == [f"bytes={kept}-"]
    assert big_file.size - kept <= proxy.sent < big_file.size - kept + 1024 * 1024  # the rest, plus headers
    assert not partial.exists()

    # a second bundle, the same digest: nothing downloaded
    proxy.sent = 0
    second = _load(tags[1], home, env)
    assert second.returncode == 0 and second.stdout.strip() == big_file.sha256
    assert proxy.sent == 0

    # offline, with the endpoint unreachable: the cache is enough
    proxy.close()
    offline = _load(tags[1], home, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "MODELBUNDLE_OFFLINE": "1"})
    assert offline.returncode == 0 and offline.stdout.strip() == big_file.sha256

    # tampered on the server, with the cache emptied: refused, naming both digests; nothing kept
    blob.unlink()
    tampered = bytearray(b"\0" * 1024)
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key="models/big.bin", Body=bytes(tampered))
    refused = _load(tags[0], home, {"AWS_ENDPOINT_URL": moto_s3.endpoint_url})
    assert refused.returncode != 0
    import hashlib

    got = hashlib.sha256(bytes(tampered)).hexdigest()
    assert f"sha256:{got}" in refused.stderr and f"sha256:{big_file.sha256}" in refused.stderr
    assert "artifact 'weights'" in refused.stderr
    assert not blob.exists() and not partial.exists()
