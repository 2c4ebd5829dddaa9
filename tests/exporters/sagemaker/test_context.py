"""The --target sagemaker build context, without an engine: root, port 8080, the bind-to-port label, `serve`.

Not --offline: these tests may run before any build filled the session's wheel cache.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.cli import cli, ok
from modelbundle.bundler import StoredBundle


def test_the_sagemaker_dockerfile(sm_home: Path, base_bundle: StoredBundle, tmp_path: Path) -> None:
    out = tmp_path / "context"
    ok(cli("containerize", base_bundle.tag, "--target", "sagemaker", "--context-only", str(out), home=sm_home))
    builder, final = (out / "Dockerfile").read_text().split("\n\n", 1)
    # the builder is every target's (the user is made, unused), so the venv layer is the docker image's
    docker = tmp_path / "docker-context"
    ok(cli("containerize", base_bundle.tag, "--context-only", str(docker), home=sm_home))
    assert (docker / "Dockerfile").read_text().split("\n\n", 1)[0] == builder
    assert "USER" not in final and "WORKDIR" not in final and "HEALTHCHECK" not in final
    assert "EXPOSE 8080" in final
    assert (
        'ENTRYPOINT ["/opt/venv/bin/python", "-m", "modelbundle.runtime._sagemaker_main", "--bundle", "/opt/bundle"]\nCMD ["serve"]'
        in final
    )
    assert '"com.amazonaws.sagemaker.capabilities.accept-bind-to-port"="true"' in final
    # no extras: the image lock is the bundle's lock
    assert (out / "requirements.lock").read_text() == (base_bundle.path / "env" / "requirements.lock").read_text()


def test_the_default_tag_names_the_target(sm_home: Path, base_bundle: StoredBundle, tmp_path: Path) -> None:
    out = tmp_path / "context"
    result = ok(cli("containerize", base_bundle.tag, "--target", "sagemaker", "--context-only", str(out), home=sm_home))
    assert f"docker build -t {base_bundle.tag}-sagemaker {out}" in result.stdout
