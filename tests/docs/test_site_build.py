"""The documentation site builds with ``mkdocs build --strict``: no broken link, no page left out
of the nav, and an API reference generated from the docstrings of the public names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import modelbundle
from docs.conftest import REPO


def test_the_site_builds_strictly_with_the_api_reference(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-6000:]}"
    assert (site / "quickstart" / "index.html").is_file()
    reference = (site / "reference" / "api" / "index.html").read_text()
    # every public name of the package has its own entry (errors under modelbundle.errors, where they live)
    for name in modelbundle.__all__:
        if name != "__version__":
            ids = (f'id="modelbundle.{name}"', f'id="modelbundle.errors.{name}"')
            assert any(i in reference for i in ids), f"modelbundle.{name} is not in the API reference"
    # and its docstring is there: the first words of load()'s
    assert modelbundle.load.__doc__
    assert " ".join(modelbundle.load.__doc__.split()[:5]) in reference
