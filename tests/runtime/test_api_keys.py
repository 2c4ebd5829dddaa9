"""Key files and MODELBUNDLE_API_KEYS: what is accepted, and the one-line errors for what is not."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelbundle.errors import ServeError
from modelbundle.runtime import ServeConfig


def ring(tmp_path: Path, text: str, env: str = ""):
    from modelbundle.runtime._api_keys import load_keys

    path = tmp_path / "keys"
    path.write_text(text)
    return load_keys(str(path), tuple(k for k in env.split(",") if k))


def test_plain_and_hashed_entries_comments_and_blank_lines(tmp_path: Path) -> None:
    hashed = hashlib.sha256(b"bob-secret-key").hexdigest()
    keys = ring(tmp_path, f"# team keys\n\nalice-plain-key\n  bob:{hashed}  \n", env="from-the-env-1")
    assert len(keys) == 3
    assert keys.match(b"bob-secret-key") == "bob"
    assert keys.match(b"alice-plain-key") == "line-3"
    assert keys.match(b"from-the-env-1") == "env-1"
    assert keys.match(hashed.encode()) is None  # the digest itself is not a key
    assert keys.match(b"alice-plain-ke") is None
    assert keys.match(b"") is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("# only comments\n\n", r"holds no keys"),
        ("short\n", r"line 1: a key must be at least 8 characters long"),
        ("two words here\n", r"line 1: a key may not hold spaces"),
        (f"a:{'0' * 64}\na:{'1' * 64}\n", r"line 2: the name 'a' is used twice"),
    ],
)
def test_a_bad_key_file_fails_at_resolve_with_one_line(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(ServeError, match=match) as refused:
        ServeConfig.resolve({"api_key_file": str(path)}, env={})
    assert "\n" not in str(refused.value)


def test_a_missing_key_file_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match=r"^--api-key-file .*nope: no such file$"):
        ServeConfig.resolve({"api_key_file": str(tmp_path / "nope")}, env={})


def test_env_keys_are_comma_separated_and_not_in_the_configs_repr() -> None:
    config = ServeConfig.resolve({}, env={"MODELBUNDLE_API_KEYS": " first-key-123 , second-key-456 ,"})
    assert config.api_keys == ("first-key-123", "second-key-456")
    assert "first-key-123" not in repr(config)


def test_an_env_key_error_does_not_show_the_key() -> None:
    with pytest.raises(ServeError, match=r"MODELBUNDLE_API_KEYS entry 2: a key must be at least 8") as refused:
        ServeConfig.resolve({}, env={"MODELBUNDLE_API_KEYS": "long-enough-key,tiny"})
    assert "tiny" not in str(refused.value)


@pytest.mark.parametrize("rate", ["10/s", "600/m", "2.5/s", "30/min"])
def test_rates(rate: str) -> None:
    assert ServeConfig.resolve({"rate_limit": rate}, env={}).rate_limit == rate


@pytest.mark.parametrize("rate", ["10", "10/h", "0/s", "fast"])
def test_a_bad_rate_is_one_line_naming_the_flag(rate: str) -> None:
    with pytest.raises(ServeError, match=r"^--rate-limit: .*not a rate: .*\(try 10/s or 600/m"):
        ServeConfig.resolve({"rate_limit": rate}, env={})


def test_cors_origins_from_the_env() -> None:
    config = ServeConfig.resolve({}, env={"MODELBUNDLE_CORS_ORIGIN": "https://a.test,https://b.test"})
    assert config.cors_origin == ("https://a.test", "https://b.test")
