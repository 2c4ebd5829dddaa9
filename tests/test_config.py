"""``ServeConfig.resolve``: flag > MODELBUNDLE_* env > default, sizes, and errors naming their source."""

import os
from typing import Any

import pytest

from modelbundle.errors import ServeError
from modelbundle.runtime import ServeConfig, parse_size


def _blas_default(workers: int) -> int:
    # half the CPUs, shared among the workers, at least one
    return max(1, (os.cpu_count() or 1) // (2 * workers))


DEFAULTS = ServeConfig(blas_threads=_blas_default(1))


def test_defaults_when_nothing_is_given() -> None:
    assert ServeConfig.resolve({}, env={}) == DEFAULTS
    # a flag left at None (click's "not given") does not override anything
    assert ServeConfig.resolve(dict.fromkeys(ServeConfig.model_fields), env={}) == DEFAULTS


def test_env_overrides_default_and_flag_overrides_env() -> None:
    env = {"MODELBUNDLE_PORT": "9000", "MODELBUNDLE_HOST": "0.0.0.0", "MODELBUNDLE_TIMEOUT": "2.5"}
    from_env = ServeConfig.resolve({}, env=env)
    assert (from_env.port, from_env.host, from_env.timeout) == (9000, "0.0.0.0", 2.5)
    from_flag = ServeConfig.resolve({"port": 8080, "host": None}, env=env)
    assert (from_flag.port, from_flag.host, from_flag.timeout) == (8080, "0.0.0.0", 2.5)
    assert from_flag.workers == DEFAULTS.workers


def test_empty_env_var_counts_as_unset() -> None:
    assert ServeConfig.resolve({}, env={"MODELBUNDLE_PORT": ""}).port == DEFAULTS.port


def test_env_vars_without_the_prefix_are_ignored() -> None:
    assert ServeConfig.resolve({}, env={"PORT": "1", "UVICORN_PORT": "2"}) == DEFAULTS


def test_resolve_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELBUNDLE_THREADS", "7")
    assert ServeConfig.resolve({}).threads == 7


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("Yes", True), ("ON", True), ("0", False), ("false", False), ("no", False), ("off", False)],
)
def test_boolean_env_values(raw: str, expected: bool) -> None:
    config = ServeConfig.resolve({}, env={"MODELBUNDLE_BATCHING": raw, "MODELBUNDLE_ACCESS_LOG": raw})
    assert config.batching is expected
    assert config.access_log is expected


def test_log_format_is_text_by_default_and_json_from_the_flag_or_env() -> None:
    assert ServeConfig.resolve({}, env={}).log_format == "text"
    assert ServeConfig.resolve({}, env={"MODELBUNDLE_LOG_FORMAT": "json"}).log_format == "json"
    assert ServeConfig.resolve({"log_format": "text"}, env={"MODELBUNDLE_LOG_FORMAT": "json"}).log_format == "text"
    with pytest.raises(ServeError, match=r"^MODELBUNDLE_LOG_FORMAT: Input should be 'text' or 'json'$"):
        ServeConfig.resolve({}, env={"MODELBUNDLE_LOG_FORMAT": "yaml"})


def test_boolean_flag_false_beats_env_true() -> None:
    assert ServeConfig.resolve({"batching": False}, env={"MODELBUNDLE_BATCHING": "1"}).batching is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10MB", 10 * 1000**2),
        ("512KiB", 512 * 1024),
        ("1gb", 1000**3),
        ("2GiB", 2 * 1024**3),
        ("1.5 MiB", int(1.5 * 1024**2)),
        ("100", 100),
        ("100b", 100),
        ("64k", 64 * 1000),
        (" 3 TB ", 3 * 1000**4),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["ten MB", "10 XB", "-5MB", "", "MB"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a size: .* \(try 10MB, 512KiB or a number of bytes\)"):
        parse_size(text)


def test_size_from_flag_and_env() -> None:
    assert ServeConfig.resolve({"max_body_size": "512KiB"}, env={}).max_body_size == parse_size("512KiB")
    assert ServeConfig.resolve({}, env={"MODELBUNDLE_MAX_BODY_SIZE": "10MB"}).max_body_size == parse_size("10MB")
    assert ServeConfig.resolve({"max_body_size": 2048}, env={}).max_body_size == 2048
    assert ServeConfig.resolve({"body_min_rate": "2KiB"}, env={}).body_min_rate == parse_size("2KiB")
    assert ServeConfig.resolve({}, env={"MODELBUNDLE_MAX_HEADER_SIZE": "16KiB"}).max_header_size == parse_size("16KiB")


@pytest.mark.parametrize(
    ("flags", "env", "match"),
    [
        ({"port": 70000}, {}, r"^--port: Input should be less than or equal to 65535$"),
        ({"workers": 0}, {}, r"^--workers: Input should be greater than or equal to 1$"),
        ({"max_body_size": "lots"}, {}, r"^--max-body-size: .*not a size: 'lots'"),
        ({"log_level": "loud"}, {}, r"^--log-level: Input should be 'critical', 'error', 'warning', 'info' or 'debug'$"),
        ({}, {"MODELBUNDLE_PORT": "eighty"}, r"^MODELBUNDLE_PORT: Input should be a valid integer"),
        ({}, {"MODELBUNDLE_TIMEOUT": "0"}, r"^MODELBUNDLE_TIMEOUT: Input should be greater than 0$"),
        ({}, {"MODELBUNDLE_MAX_BODY_SIZE": "1 ZB"}, r"^MODELBUNDLE_MAX_BODY_SIZE: .*not a size: '1 ZB'"),
        ({}, {"MODELBUNDLE_BATCHING": "flase"}, r"^MODELBUNDLE_BATCHING: Input should be a valid boolean"),
        ({"body_timeout": 0}, {}, r"^--body-timeout: Input should be greater than 0$"),
        ({"body_min_rate": "fast"}, {}, r"^--body-min-rate: .*not a size: 'fast'"),
        ({"max_header_size": "100"}, {}, r"^--max-header-size: Input should be greater than or equal to 1024$"),
        ({}, {"MODELBUNDLE_MAX_HEADERS": "0"}, r"^MODELBUNDLE_MAX_HEADERS: Input should be greater than or equal to 1$"),
    ],
)
def test_bad_value_names_the_flag_or_env_var(flags: dict[str, Any], env: dict[str, str], match: str) -> None:
    with pytest.raises(ServeError, match=match):
        ServeConfig.resolve(flags, env=env)


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ServeError, match=r"^unknown serve options: \['colour', 'portt'\]$"):
        ServeConfig.resolve({"portt": 1, "colour": None}, env={})


@pytest.mark.parametrize(
    ("flags", "env"),
    [({"reload": True, "workers": 2}, {}), ({"reload": True}, {"MODELBUNDLE_WORKERS": "2"}), ({}, {"MODELBUNDLE_RELOAD": "1", "MODELBUNDLE_WORKERS": "3"})],
)
def test_reload_with_several_workers_is_refused(flags: dict[str, Any], env: dict[str, str]) -> None:
    with pytest.raises(ServeError, match=r"^--reload and --workers > 1 cannot be combined; reload runs one worker$"):
        ServeConfig.resolve(flags, env=env)


def test_reload_with_one_worker_is_fine() -> None:
    config = ServeConfig.resolve({"reload": True}, env={})
    assert config.reload
    assert config.workers == 1


def test_config_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        DEFAULTS.port = 1  # type: ignore[misc]


def test_blas_threads_default_shares_half_the_cpus_among_workers() -> None:
    assert ServeConfig.resolve({"workers": 2}, env={}).blas_threads == _blas_default(2)


def test_blas_threads_default_stays_off_when_the_environment_sets_a_thread_count() -> None:
    assert ServeConfig.resolve({}, env={"OMP_NUM_THREADS": "3"}).blas_threads is None


def test_blas_threads_flag_wins_over_env() -> None:
    config = ServeConfig.resolve({"blas_threads": 5}, env={"MODELBUNDLE_BLAS_THREADS": "2", "OMP_NUM_THREADS": "3"})
    assert config.blas_threads == 5


@pytest.mark.parametrize(("text", "seconds"), [("7d", 7 * 86400.0), ("12h", 43200.0), ("30m", 1800.0), ("1.5s", 1.5), ("90", 90.0)])
def test_job_ttl_takes_durations_from_flag_and_env(text: str, seconds: float) -> None:
    assert ServeConfig.resolve({"job_ttl": text}, env={}).job_ttl == seconds
    assert ServeConfig.resolve({}, env={"MODELBUNDLE_JOB_TTL": text}).job_ttl == seconds


def test_job_settings_default_and_bad_ones_name_their_source() -> None:
    config = ServeConfig.resolve({}, env={})
    assert (config.jobs, config.job_max_attempts, config.job_concurrency, config.job_ttl) == (True, 3, 4, 7 * 86400.0)
    with pytest.raises(ServeError, match=r"--job-ttl: .*not a duration: 'soon'"):
        ServeConfig.resolve({"job_ttl": "soon"}, env={})
    with pytest.raises(ServeError, match="MODELBUNDLE_JOB_MAX_ATTEMPTS"):
        ServeConfig.resolve({}, env={"MODELBUNDLE_JOB_MAX_ATTEMPTS": "0"})
    with pytest.raises(ServeError, match="--jobs-dir and --jobs-url cannot be combined"):
        ServeConfig.resolve({"jobs_dir": "/tmp/j", "jobs_url": "postgresql://x"}, env={})


def test_secrets_stay_out_of_the_config_repr() -> None:
    config = ServeConfig.resolve({"webhook_secret": "s3cret", "jobs_url": "postgresql://u:pw@h/db"}, env={})
    assert "s3cret" not in repr(config) and "pw@" not in repr(config)
