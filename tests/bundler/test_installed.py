"""The fast view of the installed environment agrees with importlib.metadata, and its cache follows installs."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from modelbundle.bundler import _installed
from modelbundle.bundler._installed import IMPORT_MAP_DIR, fingerprint, import_map, installed_pins


def _fake_distribution(site: Path, name: str, version: str, top_level: str) -> None:
    """What pip leaves for a pure package: the module, and a dist-info with METADATA and RECORD."""
    (site / f"{top_level}.py").write_text("VALUE = 1\n")
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{top_level}.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(folder)])
    _installed._import_map.cache_clear()
    return folder


def test_pins_from_folder_names_equal_what_importlib_metadata_reads() -> None:
    expected = {}
    for dist in importlib.metadata.distributions():
        expected.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version)
    pins = installed_pins()
    assert len(pins) > 50  # the test environment, not an empty listing
    assert {name: pin.partition("==")[2] for name, pin in pins.items()} == expected


def test_the_import_map_is_importlib_metadatas_and_is_read_back_from_disk(tmp_path: Path, site: Path) -> None:
    expected = {name: sorted(set(dists)) for name, dists in importlib.metadata.packages_distributions().items()}
    assert import_map(tmp_path) == expected
    cached = tmp_path / IMPORT_MAP_DIR / f"{fingerprint()}.json"
    assert cached.is_file()
    # read back from disk (not recomputed): a marker put in the file comes out
    cached.write_text('{"marker_only_in_the_file": ["x"]}')
    _installed._import_map.cache_clear()
    assert import_map(tmp_path) == {"marker_only_in_the_file": ["x"]}


def test_installing_a_distribution_changes_the_fingerprint_and_the_map(tmp_path: Path, site: Path) -> None:
    before = fingerprint()
    assert "fresh_module" not in import_map(tmp_path)
    _fake_distribution(site, "fresh-dist", "1.2.3", "fresh_module")
    assert fingerprint() != before
    assert import_map(tmp_path)["fresh_module"] == ["fresh-dist"]
    assert installed_pins()["fresh-dist"] == "fresh-dist==1.2.3"


def test_a_damaged_cache_file_is_computed_again(tmp_path: Path, site: Path) -> None:
    cached = tmp_path / IMPORT_MAP_DIR / f"{fingerprint()}.json"
    cached.parent.mkdir(parents=True)
    cached.write_text("{not json")
    assert "packaging" in import_map(tmp_path)
    assert cached.read_text().startswith("{")


def test_an_old_folder_with_a_dash_in_its_name_is_read_from_its_metadata(site: Path) -> None:
    info = site / "odd-name-2.0.dist-info"  # an old installer's spelling: name-with-dash-version
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: odd-name\nVersion: 2.0\n")
    assert installed_pins()["odd-name"] == "odd-name==2.0"
