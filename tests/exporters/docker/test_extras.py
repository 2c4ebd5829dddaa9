"""The image lock and ``--target-lock``: what a target adds, checked against a hashed lock of its own (real pip, the real index)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelbundle.bundler import Reporter
from modelbundle.bundler._lockfile import read_lock
from modelbundle.errors import ExportError
from modelbundle.exporters.docker import (
    ImageExtras,
    ImagePlatform,
    MovedPin,
    WheelCache,
    image_lock_text,
    resolve_extras,
)
from modelbundle.exporters.ray import RAY_REQUIREMENT

REPO = Path(__file__).resolve().parents[3]
#: the test environment's lock: a bundle built in it has these pins
TEST_LOCK = REPO / "requirements" / "test.lock"
#: what --target ray adds, locked against test.lock (scripts/lock.sh)
RAY_TARGET_LOCK = REPO / "requirements" / "ray-target.lock"
PLATFORM = ImagePlatform.parse("linux/amd64", "3.11")

BUNDLE_LOCK = """\
# a bundle's lock: pip-compile's entries, continuations and notes
anyio==4.16.0 \\
    --hash=sha256:59bb03251907983d1603d27c3087ddb1e93299ea2163adcdba37899a4fb12ffb
    # via starlette
idna==3.21 \\
    --hash=sha256:13c8b14853c5c336eaab526f3390817e9c8fcd8fa175abdd1a7480a5c94f99cb \\
    --hash=sha256:387ab0bbea1ee7a196ea5b24eb007bad0242cc3127fe96713939942bc9e720d7
    # via
    #   anyio
    #   requests
starlette==1.10.0 --hash=sha256:{starlette}

# pip and setuptools
setuptools==80.0.0 --hash=sha256:{setuptools}
""".format(starlette="1" * 64, setuptools="2" * 64)


def _resolve_ray(lock: Path, tmp_path: Path, target_lock: Path) -> ImageExtras:
    return resolve_extras(
        [RAY_REQUIREMENT], lock, PLATFORM, WheelCache(tmp_path / "wheels"), Reporter(True), direct=(), target_lock=target_lock
    )


def _bundle_lock_from_test_lock(tmp_path: Path) -> Path:
    lock = tmp_path / "requirements.lock"
    lock.write_text(TEST_LOCK.read_text())
    return lock


def _target_lock_without(tmp_path: Path, name: str, replacement: str = "") -> Path:
    """A copy of ray-target.lock with ``name``'s entry replaced."""
    (entry,) = [dist.text for dist in read_lock(RAY_TARGET_LOCK) if dist.name == name]
    doctored = tmp_path / "ray-target.lock"
    doctored.write_text(RAY_TARGET_LOCK.read_text().replace(entry + "\n", replacement))
    return doctored


def test_with_nothing_moved_the_image_lock_is_the_bundle_lock_byte_for_byte(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(BUNDLE_LOCK)
    assert image_lock_text(lock, ImageExtras(), "ray") == BUNDLE_LOCK
    added = ("msgpack==1.2.4 --hash=sha256:" + "3" * 64, "ray==2.60.0 --hash=sha256:" + "4" * 64)
    # the layout of every image built before --relax-transitive-pins (the venv layer's digest depends on it)
    assert image_lock_text(lock, ImageExtras(added), "ray") == (
        BUNDLE_LOCK.rstrip("\n") + "\n# added for --target ray (resolved with the lines above as constraints)\n"
        + "".join(f"{entry}\n" for entry in added)
    )


def test_a_moved_pin_replaces_the_bundle_entry_with_its_hashes_and_notes(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(BUNDLE_LOCK)
    moved = MovedPin("idna", "3.21", "3.20", "idna==3.20 --hash=sha256:" + "5" * 64)
    text = image_lock_text(lock, ImageExtras(("ray==2.60.0 --hash=sha256:" + "4" * 64,), (moved,)), "ray")
    assert "13c8b14853c5c336" not in text and "#   requests" not in text  # the old entry's hashes and notes
    assert text.startswith("# a bundle's lock: pip-compile's entries, continuations and notes\nanyio==4.16.0 \\\n")
    assert "    # via starlette\nstarlette==1.10.0" in text  # the neighbours are untouched
    assert text.endswith(f"{moved.entry}\n    # the bundle's lock: idna==3.21\n")
    (tmp_path / "image.lock").write_text(text)
    image = {dist.name: dist for dist in read_lock(tmp_path / "image.lock")}
    assert list(image) == ["anyio", "starlette", "setuptools", "ray", "idna"]
    assert image["idna"].version == "3.20" and image["idna"].hashes == {"5" * 64}


def test_the_target_lock_decides_what_is_added(tmp_path: Path) -> None:
    lock = _bundle_lock_from_test_lock(tmp_path)
    extras = _resolve_ray(lock, tmp_path, RAY_TARGET_LOCK)
    assert extras.moved == ()
    target = {dist.name: dist for dist in read_lock(RAY_TARGET_LOCK)}
    bundle = {dist.name for dist in read_lock(lock)}
    added = {}
    for entry in extras.added:
        pin, _, digest = entry.partition(" --hash=sha256:")
        name, _, version = pin.partition("==")
        added[name] = version
        assert target[name].version == version and digest in target[name].hashes, entry
    # exactly what ray-target.lock has beyond the bundle's pins
    assert set(added) == set(target) - bundle and added["ray"] == target["ray"].version
    assert image_lock_text(lock, extras, "ray").startswith(TEST_LOCK.read_text().rstrip("\n") + "\n# added for --target ray")


def test_a_wheel_the_target_lock_does_not_list_is_refused(tmp_path: Path) -> None:
    version = next(dist.version for dist in read_lock(RAY_TARGET_LOCK) if dist.name == "ray")
    doctored = _target_lock_without(tmp_path, "ray", f"ray=={version} --hash=sha256:{'0' * 64}\n")
    with pytest.raises(
        ExportError,
        match=rf"^the wheel pip chose for ray=={re.escape(version)} \(sha256:[0-9a-f]{{64}}\) is not one the target lock {re.escape(str(doctored))} lists for ray; ",
    ):
        _resolve_ray(_bundle_lock_from_test_lock(tmp_path), tmp_path, doctored)


def test_a_target_lock_without_an_added_distribution_is_refused(tmp_path: Path) -> None:
    doctored = _target_lock_without(tmp_path, "colorful")
    with pytest.raises(ExportError, match=rf"^the target lock {re.escape(str(doctored))} does not pin colorful \(pip chose colorful==[^)]+\); "):
        _resolve_ray(_bundle_lock_from_test_lock(tmp_path), tmp_path, doctored)


def test_a_target_lock_that_cannot_be_read_is_one_clear_error(tmp_path: Path) -> None:
    lock = _bundle_lock_from_test_lock(tmp_path)
    missing = tmp_path / "missing.lock"
    with pytest.raises(ExportError, match=rf"^cannot read the target lock {re.escape(str(missing))}: No such file or directory$"):
        _resolve_ray(lock, tmp_path, missing)
    with pytest.raises(ExportError, match=rf"^cannot read the target lock {re.escape(str(tmp_path))}: Is a directory$"):
        _resolve_ray(lock, tmp_path, tmp_path)
    unhashed = tmp_path / "unhashed.lock"
    unhashed.write_text("ray==2.60.0\n")
    with pytest.raises(ExportError, match=r"^the target lock is not a hashed lock \(uv pip compile --generate-hashes writes one\): .*ray==2\.60\.0 has no --hash lines$"):
        _resolve_ray(lock, tmp_path, unhashed)
    # checked even for a target that adds nothing, so that a wrong path is never silently ignored
    with pytest.raises(ExportError, match=r"^cannot read the target lock"):
        resolve_extras((), lock, PLATFORM, WheelCache(tmp_path), Reporter(True), direct=(), target_lock=missing)
