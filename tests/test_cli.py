"""The CLI as a translator: flags and env become ``serve(target, ServeConfig)``; errors print one line."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

import modelbundle.bundler
import modelbundle.runtime
from modelbundle import __version__
from modelbundle.cli import main
from modelbundle.errors import ImportTargetError, ServeError
from modelbundle.runtime import ServeConfig, parse_size

BIN = Path(sys.executable).parent


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("MODELBUNDLE_") or name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            # the developer's own settings must not leak in
            monkeypatch.delenv(name)
    return CliRunner()


@pytest.fixture
def serve() -> Iterator[mock.MagicMock]:
    # cli/_serve.py imports `serve` from modelbundle.runtime when the command runs
    with mock.patch.object(modelbundle.runtime, "serve") as patched:
        yield patched


def test_serve_passes_target_and_default_config(runner: CliRunner, serve: mock.MagicMock) -> None:
    result = runner.invoke(main, ["serve", "app.py:Shop"])
    assert result.exit_code == 0, result.output
    expected = ServeConfig(blas_threads=max(1, (os.cpu_count() or 1) // 2))
    serve.assert_called_once_with("app.py:Shop", expected)


def test_serve_translates_every_flag(runner: CliRunner, serve: mock.MagicMock) -> None:
    args = [
        "serve", "pkg.mod:Svc",
        "--host", "0.0.0.0", "--port", "8080", "--workers", "3", "--no-reload",
        "--max-body-size", "10MB", "--timeout", "1.5", "--graceful-timeout", "4",
        "--max-concurrency", "16", "--threads", "2", "--no-batching", "--no-access-log",
        "--log-level", "debug", "--blas-threads", "3",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    expected = ServeConfig(
        host="0.0.0.0", port=8080, workers=3, reload=False, max_body_size=parse_size("10MB"), timeout=1.5,
        graceful_timeout=4, max_concurrency=16, threads=2, batching=False, access_log=False, log_level="debug",
        blas_threads=3,
    )
    serve.assert_called_once_with("pkg.mod:Svc", expected)


def test_serve_translates_the_job_flags(runner: CliRunner, serve: mock.MagicMock) -> None:
    args = [
        "serve", "m:S", "--jobs-dir", "/srv/jobs", "--job-max-attempts", "5", "--job-ttl", "12h",
        "--job-concurrency", "2", "--webhook-secret", "s3cret",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    config = serve.call_args.args[1]
    assert (config.jobs, config.jobs_dir, config.job_max_attempts, config.job_ttl, config.job_concurrency) == (
        True, "/srv/jobs", 5, 12 * 3600.0, 2,
    )
    assert config.webhook_secret == "s3cret"
    off = runner.invoke(main, ["serve", "m:S", "--no-jobs", "--jobs-url", "postgresql://db/jobs"])
    assert off.exit_code == 0 and serve.call_args.args[1].jobs is False
    assert serve.call_args.args[1].jobs_url == "postgresql://db/jobs"


def test_every_config_field_has_a_flag() -> None:
    serve_command = main.commands["serve"]
    flags = {param.name for param in serve_command.params} - {"target"}
    # keys themselves come only from MODELBUNDLE_API_KEYS or --api-key-file: a flag would show them in `ps`
    assert flags == set(ServeConfig.model_fields) - {"api_keys"}


def test_access_flags_reach_the_config(runner: CliRunner, serve: mock.MagicMock, tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("a-key-of-length\n")
    args = ["serve", "m:S", "--api-key-file", str(keys), "--protect-docs", "--protect-metrics",
            "--cors-origin", "https://a.test", "--cors-origin", "https://b.test", "--rate-limit", "5/s"]
    result = runner.invoke(main, args, env={"MODELBUNDLE_CORS_ORIGIN": "https://env.test"})
    assert result.exit_code == 0, result.output
    config = serve.call_args.args[1]
    assert (config.api_key_file, config.protect_docs, config.protect_metrics) == (str(keys), True, True)
    assert config.cors_origin == ("https://a.test", "https://b.test")  # the flags win over the env var
    assert config.rate_limit == "5/s"
    from_env = runner.invoke(main, ["serve", "m:S"], env={"MODELBUNDLE_CORS_ORIGIN": "https://env.test", "MODELBUNDLE_API_KEYS": "k-123456789"})
    assert from_env.exit_code == 0, from_env.output
    assert serve.call_args.args[1].cors_origin == ("https://env.test",)
    assert serve.call_args.args[1].api_keys == ("k-123456789",)
    bad = runner.invoke(main, ["serve", "m:S", "--api-key-file", str(tmp_path / "missing")])
    assert bad.exit_code != 0
    assert bad.output.strip().endswith("missing: no such file") and "Traceback" not in bad.output


def test_env_vars_apply_and_flags_win(runner: CliRunner, serve: mock.MagicMock) -> None:
    env = {"MODELBUNDLE_PORT": "9000", "MODELBUNDLE_WORKERS": "2", "MODELBUNDLE_BATCHING": "0"}
    result = runner.invoke(main, ["serve", "m:S", "--port", "7000"], env=env)
    assert result.exit_code == 0, result.output
    config = serve.call_args.args[1]
    assert (config.port, config.workers, config.batching) == (7000, 2, False)


def test_bad_option_value_prints_one_line_naming_the_flag(runner: CliRunner, serve: mock.MagicMock) -> None:
    result = runner.invoke(main, ["serve", "m:S", "--max-body-size", "huge"])
    assert result.exit_code == 1
    assert result.output.startswith("error: --max-body-size: ")
    assert result.output.count("\n") == 1
    serve.assert_not_called()


def test_reload_with_workers_is_refused(runner: CliRunner, serve: mock.MagicMock) -> None:
    result = runner.invoke(main, ["serve", "m:S", "--reload", "--workers", "2"])
    assert result.exit_code == 1
    assert result.output == "error: --reload and --workers > 1 cannot be combined; reload runs one worker\n"
    serve.assert_not_called()


@pytest.mark.parametrize("error", [ServeError("cannot listen on 127.0.0.1:3000"), ImportTargetError("no such file x.py")])
def test_library_error_is_one_line_and_exit_1(runner: CliRunner, serve: mock.MagicMock, error: Exception) -> None:
    serve.side_effect = error
    result = runner.invoke(main, ["serve", "m:S"])
    assert result.exit_code == 1
    assert result.output == f"error: {error}\n"
    assert "Traceback" not in result.output


def test_debug_shows_the_exception(runner: CliRunner, serve: mock.MagicMock) -> None:
    serve.side_effect = ServeError("boom")
    result = runner.invoke(main, ["--debug", "serve", "m:S"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ServeError)
    assert "error: boom" not in result.output


def test_other_exceptions_are_not_swallowed(runner: CliRunner, serve: mock.MagicMock) -> None:
    serve.side_effect = RuntimeError("a bug")
    result = runner.invoke(main, ["serve", "m:S"])
    assert isinstance(result.exception, RuntimeError)


def test_serve_requires_a_target(runner: CliRunner, serve: mock.MagicMock) -> None:
    result = runner.invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "Missing argument 'TARGET'" in result.output
    serve.assert_not_called()


@pytest.mark.parametrize("resolver", ["uv", "pip-tools", "auto"])
def test_build_passes_the_resolver(runner: CliRunner, resolver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no pyproject.toml of the developer's
    with mock.patch.object(modelbundle.bundler, "build") as build:
        build.return_value.tag = "plain:1"
        result = runner.invoke(main, ["build", "plain.py:Plain", "--resolver", resolver, "-o", "tag"])
    assert result.exit_code == 0, result.output
    [options] = build.call_args.args
    assert (options.service, options.resolver) == ("plain.py:Plain", resolver)


def test_build_refuses_an_unknown_resolver(runner: CliRunner) -> None:
    result = runner.invoke(main, ["build", "plain.py:Plain", "--resolver", "poetry"])
    assert result.exit_code == 2
    assert "Invalid value for '--resolver': 'poetry' is not one of 'auto', 'uv', 'pip-tools'." in result.output


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"modelbundle, version {__version__}\n"


# -- real processes ---------------------------------------------------------------------


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def test_bad_target_in_a_real_process_prints_one_line_without_traceback(tmp_path: Path) -> None:
    result = run(str(BIN / "bundle"), "serve", "bad-target", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "error: no bundle named 'bad-target' in the local store (see bundle list); "
        "to serve code, give module:Class, path/to/file.py:Class or path/to/file.py\n"
    )
    assert result.stdout == ""


def test_python_dash_m_modelbundle_help() -> None:
    result = run(sys.executable, "-m", "modelbundle", "--help")
    assert result.returncode == 0, result.stderr
    assert "Package, serve and ship ML models." in result.stdout
    assert "serve" in result.stdout


@pytest.mark.parametrize("script", ["bundle", "modelbundle"])
def test_console_scripts_exist_and_print_help(script: str) -> None:
    path = BIN / script
    assert path.is_file()
    result = run(str(path), "--help")
    assert result.returncode == 0, result.stderr
    assert "Package, serve and ship ML models." in result.stdout
    assert "serve" in result.stdout
