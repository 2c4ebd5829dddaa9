"""The parts of the Ray exporter that need no cluster: addresses, the shipped package, the Serve config, the CLI's errors, the image context."""

from __future__ import annotations

import asyncio
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fixtures.cli import cli, failed, ok
from modelbundle import Service, api
from modelbundle.bundler import StoredBundle
from modelbundle.errors import DeployError
from modelbundle.exporters.docker import bundle_digest, image_target
from modelbundle.exporters.ray import (
    APP_BUILDER,
    RAY_REQUIREMENT,
    RayDeployOptions,
    application_config,
    bundle_package,
    dashboard_url,
    serve_config,
)
from modelbundle.exporters.ray._replica import ReplicaArgs, ReplicaHeaders

from .conftest import build_scaler


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-units-home")


@pytest.fixture(scope="module")
def scaler(home: Path, tmp_path_factory: pytest.TempPathFactory) -> StoredBundle:
    return build_scaler(home, tmp_path_factory.mktemp("ray-units-project"), 2.0)


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("127.0.0.1:8265", "http://127.0.0.1:8265"),
        ("head", "http://head:8265"),
        ("http://head:9000/", "http://head:9000"),
        ("https://ray.example:443/dashboard", "https://ray.example:443"),
    ],
)
def test_dashboard_address(address: str, url: str) -> None:
    assert dashboard_url(address) == url


def test_a_ray_client_address_is_refused_with_the_way_to_go() -> None:
    with pytest.raises(DeployError, match=r"Ray Client address.*--address http://HEAD:8265"):
        dashboard_url("ray://head:10001")
    with pytest.raises(DeployError, match="http"):
        dashboard_url("ftp://head")


def test_the_package_is_the_bundle_byte_for_byte_and_the_same_every_time(scaler: StoredBundle) -> None:
    name, data = bundle_package(scaler)
    again, same = bundle_package(scaler)
    assert (name, data) == (again, same)
    assert name.startswith("_ray_pkg_") and name.endswith(".zip")
    with zipfile.ZipFile(BytesIO(data)) as archive:
        names = archive.namelist()
        assert {"bundle.json", "RECORD", "src/service.py", "env/requirements.lock"} <= set(names)
        assert archive.read("RECORD") == (scaler.path / "RECORD").read_bytes()
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in archive.infolist()} == {0o100644}


def test_application_config_fixed_replicas_shipped(scaler: StoredBundle) -> None:
    app = application_config(scaler, RayDeployOptions(replicas=3), "scaler", "_ray_pkg_abc.zip")
    assert app["import_path"] == APP_BUILDER
    assert app["runtime_env"] == {"working_dir": "gcs://_ray_pkg_abc.zip"}
    args = ReplicaArgs.model_validate(app["args"])
    assert (args.name, args.version, args.digest, args.source) == ("scaler", scaler.manifest.version, bundle_digest(scaler), "shipped")
    [deployment] = app["deployments"]
    assert deployment["num_replicas"] == 3 and "autoscaling_config" not in deployment
    assert deployment["max_ongoing_requests"] == 64  # Serve's 5 would starve the batcher
    assert deployment["max_surge_percent"] == 25  # new replicas start before old ones stop
    no_surge = application_config(scaler, RayDeployOptions(max_surge_percent=0), "scaler", None)
    assert "max_surge_percent" not in no_surge["deployments"][0]  # so older clusters take the config


def test_application_config_autoscaled_from_the_image(scaler: StoredBundle) -> None:
    options = RayDeployOptions(autoscale=(0, 4), source="image", route_prefix="/scaler", serve={"timeout": "5"})
    app = application_config(scaler, options, "prod", None)
    assert "runtime_env" not in app and app["args"]["source"] == "image" and app["args"]["serve"] == {"timeout": "5"}
    assert app["name"] == "prod" and app["route_prefix"] == "/scaler"
    [deployment] = app["deployments"]
    assert deployment["autoscaling_config"] == {"min_replicas": 0, "initial_replicas": 1, "max_replicas": 4}
    assert "num_replicas" not in deployment


def test_serve_config_keeps_the_other_applications_and_replaces_ours() -> None:
    ours = {"name": "scaler", "import_path": APP_BUILDER, "args": {"version": "new"}}
    other = {"name": "other", "import_path": "x:y"}
    current: dict[str, Any] = {
        "controller_info": {"actor_id": "abc"},
        "proxy_location": "HeadOnly",
        "http_options": {"host": "0.0.0.0", "port": 8123},
        "applications": {
            "other": {"deployed_app_config": other},
            "scaler": {"deployed_app_config": {**ours, "args": {"version": "old"}}},
            "imperative": {"deployed_app_config": None},  # made by serve.run: not ours to redeploy
        },
    }
    config = serve_config(current, ours)
    assert config["applications"] == [other, ours]
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8123} and config["proxy_location"] == "HeadOnly"
    fresh = serve_config({}, ours)
    assert fresh["http_options"] == {"host": "0.0.0.0", "port": 8000} and fresh["proxy_location"] == "EveryNode"


def test_replica_headers_name_the_replica_and_leave_the_request_id_to_the_proxy() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.startup.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"r1"), (b"content-type", b"a/b")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    wrapped = ReplicaHeaders(app, "abc123", "10.0.0.2")
    asyncio.run(wrapped({"type": "http", "path": "/predict"}, receive, send))
    asyncio.run(wrapped({"type": "lifespan"}, receive, send))
    assert sent[0]["headers"] == [(b"content-type", b"a/b"), (b"x-replica", b"abc123"), (b"x-replica-node", b"10.0.0.2")]
    assert sent[2] == {"type": "lifespan.startup.complete"}


def test_deploy_errors_are_one_line(scaler: StoredBundle, home: Path) -> None:
    assert "Ray Client address" in failed(cli("deploy", "ray", scaler.tag, "--address", "ray://127.0.0.1:10001", home=home))
    line = failed(cli("deploy", "ray", scaler.tag, "--address", "127.0.0.1:9", "--timeout", "5", home=home))
    assert "GET http://127.0.0.1:9/api/version failed" in line and "Ray dashboard" in line
    usage = cli("deploy", "ray", scaler.tag, "--autoscale", "3", home=home)
    assert usage.returncode == 2 and "MIN,MAX" in usage.stderr


def test_the_ray_target_adds_ray_serve_to_the_lock(scaler: StoredBundle, home: Path, tmp_path: Path) -> None:
    target = image_target("ray")
    assert target.extra_requirements == (RAY_REQUIREMENT,)
    context = tmp_path / "context"
    ok(cli("containerize", scaler.tag, "--target", "ray", "--context-only", context, home=home, timeout=900))
    lock = (context / "requirements.lock").read_text()
    bundle_lock = (scaler.path / "env" / "requirements.lock").read_text()
    assert lock.startswith(bundle_lock.rstrip("\n"))  # the bundle's pins first and unchanged
    added = lock[len(bundle_lock.rstrip("\n")):]
    assert "# added for --target ray" in added and "\nray==2." in added and "--hash=sha256:" in added
    for pin in ("starlette==", "pydantic==", "uvicorn=="):
        assert pin not in added  # Ray took the bundle's versions of these
    assert "\nfastapi==" in added  # Serve needs FastAPI; the bundle's own runtime does not
    dockerfile = (context / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/venv/bin/ray"]' in dockerfile
    assert "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING=0" in dockerfile and "USER 10001:10001" in dockerfile


def test_under_a_route_prefix_the_app_sees_the_path_below_it() -> None:
    seen: list[tuple[str, str]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["path"], scope.get("root_path", "")))

    wrapped = ReplicaHeaders(app, "r", "n")

    async def run() -> None:
        for path, root in (("/image/predict", "/image"), ("/image", "/image"), ("/imagery/x", "/image"), ("/predict", "")):
            await wrapped({"type": "http", "path": path, "root_path": root}, None, None)  # type: ignore[arg-type]

    asyncio.run(run())
    assert seen == [("/predict", ""), ("/", ""), ("/imagery/x", "/image"), ("/predict", "")]


def test_under_a_route_prefix_mounted_routes_answer() -> None:
    """/v1/models and /v2/models/... are Starlette mounts: they match only when the app sees itself at "/"."""
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    inner = Starlette(routes=[Route("/models", lambda request: JSONResponse({"path": request.url.path}))])
    wrapped = ReplicaHeaders(Starlette(routes=[Mount("/v1", inner)]), "r", "n")

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=wrapped, root_path="/p")
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            return await client.get(path)

    answer = asyncio.run(get("/p/v1/models"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-replica"] == "r"
    assert asyncio.run(get("/p/v1/nope")).status_code == 404


def test_the_cli_translates_every_flag(scaler: StoredBundle, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from unittest import mock

    from click.testing import CliRunner

    import modelbundle.exporters.ray
    from modelbundle.cli import main
    from modelbundle.exporters.ray import RayDeployment

    monkeypatch.setenv("MODELBUNDLE_HOME", str(home))
    monkeypatch.setenv("RAY_AUTH_TOKEN", "t0k")
    done = RayDeployment("prod", "scaler", "DEPLOYING", 0, "2.60.0", None, False, 0.1)
    with mock.patch.object(modelbundle.exporters.ray, "deploy_ray", return_value=done) as deploy:
        result = CliRunner().invoke(main, [
            "deploy", "ray", scaler.tag, "--address", "head:8265", "--autoscale", "1,4", "--name", "prod",
            "--route-prefix", "/p", "--from-image", "--num-cpus", "0.5", "--max-ongoing-requests", "16",
            "--serve-option", "timeout=5", "--serve-option", "max-concurrency=100", "--no-wait", "--timeout", "30",
            "--max-surge", "50",
        ])
    assert result.exit_code == 0, result.output
    (bundle, options, _reporter), _ = deploy.call_args
    assert bundle.tag == scaler.tag
    assert options == RayDeployOptions(
        address="head:8265", replicas=1, autoscale=(1, 4), name="prod", route_prefix="/p", source="image", num_cpus=0.5,
        max_ongoing_requests=16, max_surge_percent=50, serve={"timeout": "5", "max_concurrency": "100"}, auth_token="t0k",
        wait=False, timeout=30,
    )
    assert "deployed " + scaler.tag + " as prod on Ray 2.60.0: DEPLOYING" in result.output


def test_a_lock_ray_serve_cannot_join_is_refused_before_any_build(tmp_path: Path) -> None:
    # an older web stack than ray[serve] 2.60 accepts (fastapi>=0.133, starlette>=1.0.1): real pip, PyPI
    from modelbundle.bundler import Reporter
    from modelbundle.errors import ExportError
    from modelbundle.exporters.docker import ImagePlatform, WheelCache, resolve_extras

    lock = tmp_path / "requirements.lock"
    lock.write_text(f"fastapi==0.110.0 --hash=sha256:{'0' * 64}\nstarlette==0.36.3 --hash=sha256:{'1' * 64}\n")
    platform = ImagePlatform.parse("linux/amd64", "3.11")
    with pytest.raises(ExportError, match=r"cannot resolve ray\[serve\]>=2.60,<3 for linux/amd64 and CPython 3.11 .* the bundle's lock") as error:
        resolve_extras([RAY_REQUIREMENT], lock, platform, WheelCache(tmp_path / "wheels"), Reporter(True), direct=())
    # pip's own account of the conflict, naming the locked pins involved
    assert "the conflict is caused by:" in str(error.value) and ("fastapi" in str(error.value) or "starlette" in str(error.value))


#: fastapi 0.165.0 with opentelemetry-api 1.45.3, which every opentelemetry-sdk ray[serve] accepts refuses
OTEL_CONFLICT = Path(__file__).parent / "locks" / "otel-conflict.lock"


def _resolve_ray(tmp_path: Path, direct: set[str], *, relax: bool = False, offline: bool = False) -> Any:
    from modelbundle.bundler import Reporter
    from modelbundle.exporters.docker import ImagePlatform, WheelCache, resolve_extras

    return resolve_extras(
        [RAY_REQUIREMENT], OTEL_CONFLICT, ImagePlatform.parse("linux/amd64", "3.11"), WheelCache(tmp_path / "wheels"),
        Reporter(True), direct=direct, relax_transitive_pins=relax, offline=offline,
    )


def test_a_transitive_pin_ray_cannot_join_is_named_with_the_flag_that_moves_it(tmp_path: Path) -> None:
    from modelbundle.errors import ExportError

    with pytest.raises(ExportError, match=(
        r"^cannot resolve ray\[serve\]>=2\.60,<3 for linux/amd64 and CPython 3\.11 in the wheel cache or on the package index "
        r"together with the bundle's lock: the conflict involves the bundle's opentelemetry-api==1\.45\.3 \(transitive: not in "
        r"the bundle's requirements\); pass --relax-transitive-pins to let ray\[serve\] move it \(what moved is printed\); "
        r"pip: the conflict is caused by: .*; The user requested \(constraint\) opentelemetry-api==1\.45\.3$"
    )) as error:
        _resolve_ray(tmp_path, {"fastapi"})
    assert "\n" not in str(error.value)  # the CLI prints it as one error: line


def test_relax_transitive_pins_moves_the_pin_in_the_image_lock_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from packaging.version import Version

    from modelbundle.bundler._lockfile import read_lock
    from modelbundle.errors import ExportError
    from modelbundle.exporters.docker import image_lock_text

    bundle_text = OTEL_CONFLICT.read_text()
    extras = _resolve_ray(tmp_path, {"fastapi"}, relax=True)
    [moved] = extras.moved
    assert (moved.name, moved.locked) == ("opentelemetry-api", "1.45.3") and Version(moved.version) < Version("1.45.3")
    assert {"ray", "opentelemetry-sdk"} <= {entry.split("==")[0] for entry in extras.added}
    assert f"warning: moved opentelemetry-api 1.45.3 -> {moved.version} (transitive; the bundle's lock is unchanged, " \
        "the image's lock records it)" in capsys.readouterr().err

    text = image_lock_text(OTEL_CONFLICT, extras, "ray")
    (tmp_path / "image.lock").write_text(text)
    image = read_lock(tmp_path / "image.lock")
    otel = [dist for dist in image if dist.name == "opentelemetry-api"]
    assert [(dist.version, dist.hashes) for dist in otel] == [(moved.version, {moved.entry.rpartition(":")[2]})]
    bundle = {dist.name: dist for dist in read_lock(OTEL_CONFLICT)}
    assert {dist.name: dist for dist in image if dist.name in bundle and dist.name != "opentelemetry-api"} == {
        name: dist for name, dist in bundle.items() if name != "opentelemetry-api"
    }
    assert OTEL_CONFLICT.read_text() == bundle_text  # the bundle's own lock is never rewritten

    # the result is cached with the flag in its key: offline and with no wheels, only the cache can answer
    assert _resolve_ray(tmp_path, {"fastapi"}, relax=True, offline=True) == extras
    with pytest.raises(ExportError, match=r"^cannot resolve ray\[serve\].* in the wheel cache \(offline\)"):
        _resolve_ray(tmp_path, {"fastapi"}, offline=True)


def test_a_direct_pin_is_named_as_direct_and_never_moves(tmp_path: Path) -> None:
    from modelbundle.errors import ExportError

    with pytest.raises(ExportError, match=(
        r"together with the bundle's lock: the conflict involves the bundle's opentelemetry-api==1\.45\.3 \(direct: in the "
        r"bundle's requirements\); change that pin in the bundle's requirements \(python_packages / --requirements\) and "
        r"build again; pip: the conflict is caused by: "
    )) as error:
        # as the manifest gives them: requirements.in's lines
        _resolve_ray(tmp_path, {"fastapi==0.165.0", "opentelemetry-api==1.45.3"}, relax=True)
    assert "--relax-transitive-pins" not in str(error.value) and "even letting" not in str(error.value)


def test_containerize_passes_the_bundles_direct_requirements_and_the_new_flags(scaler: StoredBundle, tmp_path: Path) -> None:
    from unittest import mock

    import modelbundle.exporters.docker._containerize as containerize_module
    from modelbundle.bundler import LocalStore, Reporter
    from modelbundle.exporters.docker import ContainerizeOptions, export_context

    class Stop(Exception):
        pass

    options = ContainerizeOptions(target="ray", relax_transitive_pins=True, target_lock=tmp_path / "ray.lock")
    with mock.patch.object(containerize_module, "resolve_extras", side_effect=Stop) as resolve, pytest.raises(Stop):
        export_context(scaler, tmp_path / "context", options, LocalStore(tmp_path / "home"), Reporter(True))
    (requirements, lock, *_), kwargs = resolve.call_args
    assert requirements == (RAY_REQUIREMENT,) and lock == scaler.path / "env" / "requirements.lock"
    # the direct requirements are requirements.in's lines (resolve_extras reads their names)
    assert kwargs["direct"] == (scaler.path / "env" / "requirements.in").read_text().split()
    assert any(line.startswith("modelbundle==") for line in kwargs["direct"])
    assert kwargs["relax_transitive_pins"] is True and kwargs["target_lock"] == tmp_path / "ray.lock"
    assert not (tmp_path / "context").exists()  # no half-written context


def test_the_containerize_cli_passes_relax_transitive_pins_and_target_lock(scaler: StoredBundle, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from unittest import mock

    from click.testing import CliRunner

    import modelbundle.exporters.docker
    from modelbundle.cli import main
    from modelbundle.exporters.docker import ContainerizeOptions

    monkeypatch.setenv("MODELBUNDLE_HOME", str(home))
    with mock.patch.object(modelbundle.exporters.docker, "export_context", return_value=Path("ctx")) as export:
        result = CliRunner().invoke(main, [
            "containerize", scaler.tag, "--target", "ray", "--relax-transitive-pins", "--target-lock", "requirements/ray-target.lock",
            "--context-only", "ctx",
        ])
        assert result.exit_code == 0, result.output
        (bundle, _directory, options, _store, _reporter), _ = export.call_args
        assert bundle.tag == scaler.tag
        assert options == ContainerizeOptions(target="ray", relax_transitive_pins=True, target_lock=Path("requirements/ray-target.lock"))
        result = CliRunner().invoke(main, ["containerize", scaler.tag, "--target", "ray", "--context-only", "ctx"])
        assert result.exit_code == 0, result.output
        assert export.call_args[0][2] == ContainerizeOptions(target="ray")  # the defaults: strict, no target lock


class Starts(Service):
    events: ClassVar[list[str]] = []

    def setup(self) -> None:
        self.events.append("setup")

    def teardown(self) -> None:
        self.events.append("teardown")

    @api
    def echo(self, text: str) -> str:
        return text


class FailsToStart(Service):
    def setup(self) -> None:
        raise ValueError("the weights are missing")

    @api
    def echo(self, text: str) -> str:
        return text


def test_the_app_starts_when_the_replica_is_made_and_stops_when_ray_says_so() -> None:
    from modelbundle.exporters.ray._lifespan import AppLifespan
    from modelbundle.runtime import ServeConfig, create_app

    async def run() -> list[Any]:
        app = create_app(Starts, ServeConfig())
        lifespan = AppLifespan(app, "starts:1")
        await lifespan.start()
        assert Starts.events == ["setup"] and app.state.ready
        wrapped = ReplicaHeaders(app, "r", "n", lifespan)
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[Any] = []

        async def receive() -> Any:
            return inbox.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)

        await wrapped({"type": "lifespan"}, receive, send)  # what Ray's ingress does with the replica's app
        return sent

    sent = asyncio.run(run())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert Starts.events == ["setup", "teardown"]


def test_a_setup_that_raises_is_the_replicas_error() -> None:
    from modelbundle.errors import ServeError
    from modelbundle.exporters.ray._lifespan import AppLifespan
    from modelbundle.runtime import ServeConfig, create_app

    async def run() -> None:
        await AppLifespan(create_app(FailsToStart, ServeConfig()), "fails:1").start()

    with pytest.raises(ServeError, match=r"^fails:1 could not start: ValueError: the weights are missing$"):
        asyncio.run(run())


@pytest.fixture(scope="module")
def example_bundles(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, StoredBundle]:
    """The three examples, built in this (locked) test environment; iris with the model its train.py makes."""
    import shutil
    import subprocess
    import sys

    from fixtures.bundles import build_in_process
    from fixtures.docker import REPO

    iris = tmp_path_factory.mktemp("ray-iris")
    for name in ("service.py", "train.py"):
        shutil.copy(REPO / "examples" / "iris" / name, iris / name)
    subprocess.run([sys.executable, "train.py"], cwd=iris, check=True, capture_output=True)
    return {
        "iris": build_in_process(f"{iris}/service.py:IrisClassifier", iris, home),
        "mlp": build_in_process(f"{REPO}/examples/mlp/service.py:MLP", REPO / "examples" / "mlp", home),
        "text": build_in_process(f"{REPO}/examples/text/service.py:TextSentiment", REPO / "examples" / "text", home),
    }


@pytest.mark.parametrize("example", ["iris", "mlp", "text"])
def test_ray_joins_every_example_bundle_built_in_the_locked_environment(
    example: str, example_bundles: dict[str, StoredBundle], tmp_path: Path
) -> None:
    """No pin moves, and what is added is requirements/ray-target.lock's, wheel digests included."""
    from fixtures.venvs import REQUIREMENTS
    from modelbundle.bundler import Reporter
    from modelbundle.bundler._lockfile import read_lock
    from modelbundle.exporters.docker import ImagePlatform, WheelCache, resolve_extras

    bundle = example_bundles[example]
    target_lock = {dist.name: dist for dist in read_lock(REQUIREMENTS / "ray-target.lock")}
    extras = resolve_extras(
        [RAY_REQUIREMENT], bundle.path / "env" / "requirements.lock", ImagePlatform.parse("linux/amd64", "3.11"),
        WheelCache(tmp_path / "wheels"), Reporter(True), direct=bundle.manifest.dependencies.requirements,
        target_lock=REQUIREMENTS / "ray-target.lock",
    )  # fmt: skip
    assert extras.moved == ()
    added = {entry.partition("==")[0]: entry for entry in extras.added}
    assert f"ray=={target_lock['ray'].version}" in added["ray"]
    bundle_names = {dist.name for dist in read_lock(bundle.path / "env" / "requirements.lock")}
    assert set(added) == set(target_lock) - bundle_names
