"""An S3 endpoint on 127.0.0.1 for the S3 store tests: moto's standalone server, a real process.

The real AWS cannot be reached from here, so these tests talk to moto, which
emulates the S3 API over HTTP on loopback. boto3 and our backend go through
their whole stack (signing, HTTP, multipart uploads, error bodies); what moto
cannot show is AWS's own behaviour under load, eventual consistency of other
regions, or its real IAM policies.

Use it by importing the fixture into a conftest or a test module; it is
requested as ``moto_s3`` (the function has another name so that a test's
``moto_s3`` parameter does not shadow the import, which ruff reports as F811)::

    from ._moto_fixture import MotoS3, moto_s3_fixture  # noqa: F401

    def test_push(moto_s3: MotoS3) -> None: ...

One moto process serves the whole session (it takes about a second to start);
each test gets it reset to an empty bucket, with authentication off.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

BUCKET = "modelbundle-test"
START_TIMEOUT = 30.0
_SERVER = pytest.StashKey["MotoServer"]()
#: an IAM policy that lets a user do anything with S3
_S3_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


def _moto_server_command() -> list[str]:
    # the one beside this interpreter first: another Python's moto may be earlier on PATH
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        pytest.skip("moto's standalone server is not installed: pip install 'moto[server]'")
    return [found]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """One ``moto_server -H 127.0.0.1 -p PORT`` process, which can be killed and started again on the same port."""

    def __init__(self, log: Path) -> None:
        self.port = _free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [*_moto_server_command(), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode}:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"moto_server did not answer within {START_TIMEOUT} s:\n{self.log.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the server dies at once, mid-request if one is running."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def post(self, path: str, data: bytes = b"") -> None:
        """POST to moto's own control API (``/moto-api/...``)."""
        # not form-encoded (urllib's default), or Flask parses the body away from moto
        headers = {"Content-Type": "text/plain"}
        request = urllib.request.Request(self.endpoint_url + path, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url + "/moto-api/data.json", timeout=1):
                return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


class KeyPair(NamedTuple):
    access_key_id: str
    secret_access_key: str


class MotoS3:
    """What a test gets: the endpoint, an empty bucket, and control over the server.

    ``kill()`` stops the server at once (SIGKILL) - call it from a progress callback
    to cut an upload midway. ``restart()`` starts a new server on the same port with
    the empty bucket: moto keeps everything in memory, so objects stored before the
    kill are gone (unlike a real S3, which would still have every completed object).
    """

    def __init__(self, server: MotoServer, bucket: str) -> None:
        self._server = server
        self.bucket = bucket
        self.endpoint_url = server.endpoint_url

    def url(self, prefix: str = "") -> str:
        """The store URL ``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def client(self, **credentials: str) -> Any:
        """A plain boto3 S3 client on the server, to look behind the backend's back.

        After ``require_credentials()``, pass them: ``client(aws_access_key_id=..., aws_secret_access_key=...)``.
        """
        import boto3

        return boto3.session.Session(**credentials).client("s3", endpoint_url=self.endpoint_url)

    def keys(self) -> list[str]:
        """Every key in the bucket, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))

    def kill(self) -> None:
        self._server.kill()

    def restart(self) -> None:
        self._server.kill()
        self._server.start()
        self.client().create_bucket(Bucket=self.bucket)

    def require_credentials(self) -> tuple[KeyPair, KeyPair]:
        """Turn moto's authentication on; return a key pair allowed to use S3, and one that is not.

        From then on moto checks every request's signature against its IAM users,
        as AWS does: unknown keys get InvalidAccessKeyId, a wrong secret gets
        SignatureDoesNotMatch, the user without a policy gets AccessDenied.
        """
        iam = self.iam()
        pairs = []
        for user, policy in (("pusher", _S3_ALL), ("stranger", None)):
            iam.create_user(UserName=user)
            if policy is not None:
                iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=policy)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            pairs.append(KeyPair(str(key["AccessKeyId"]), str(key["SecretAccessKey"])))
        self._server.post("/moto-api/reset-auth", b"0")  # authenticate every request from now on
        return pairs[0], pairs[1]

    def iam(self) -> Any:
        """An IAM client on the same server (moto serves every AWS API on one port)."""
        import boto3

        return boto3.session.Session().client("iam", endpoint_url=self.endpoint_url)


@pytest.fixture(name="moto_s3")
def moto_s3_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MotoS3]:
    """An empty bucket on moto's S3 emulator at 127.0.0.1 (the real AWS is out of reach here).

    Sets fake AWS credentials and region in the environment (moto accepts any key
    until ``require_credentials()``), and clears endpoint and profile variables so
    nothing from the machine leaks in.
    """
    pytest.importorskip("boto3", reason="the S3 store needs boto3: pip install 'modelbundle[aws]'")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # no ~/.aws/config or credentials file of the machine's user
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)

    server = request.config.stash.get(_SERVER, None)
    if server is None:
        server = MotoServer(tmp_path_factory.getbasetemp() / "moto_server.log")
        request.config.stash[_SERVER] = server
        request.config.add_cleanup(server.kill)
    if server.running:
        server.post("/moto-api/reset")  # forget every bucket, object and IAM user
        server.post("/moto-api/reset-auth", b"inf")  # accept any credentials again
    else:
        server.start()  # first use, or a previous test killed it
    s3 = MotoS3(server, BUCKET)
    s3.client().create_bucket(Bucket=BUCKET)
    yield s3
