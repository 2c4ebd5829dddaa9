"""What an installed environment carries that a Lambda function never uses, and its removal.

Removed: bytecode caches (the exporter compiles its own afterwards, so that each
pyc matches a shipped source), the ``bin/`` scripts pip writes (their shebangs name the
build machine's Python), ``*.pyi`` stubs, the source maps of web UIs' scripts and
styles (only a browser's developer tools read them: 7 MB of Swagger UI's 11), and the
test packages nested inside packages, as images lose them too
(``modelbundle._test_packages``). Kept on
purpose: ``*.dist-info`` (importlib.metadata reads versions from it, and the
artifact loader checks framework versions that way), and data files such as
``.rst`` or ``.txt`` (scikit-learn reads its dataset descriptions at run time).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..._test_packages import prune_test_packages


def slim(site: Path) -> int:
    """Delete what Lambda never needs from ``site`` (a ``pip install --target`` folder); the bytes freed."""
    freed = 0
    scripts = site / "bin"
    if scripts.is_dir():
        freed += _remove_tree(scripts)
    for directory, dirnames, filenames in os.walk(site):
        here = Path(directory)
        if "__pycache__" in dirnames:
            freed += _remove_tree(here / "__pycache__")
            dirnames.remove("__pycache__")
        for name in filenames:
            if name.endswith((".pyi", ".pyc", ".js.map", ".css.map")):
                path = here / name
                freed += path.lstat().st_size
                path.unlink()
    return freed + prune_test_packages(site)


def _remove_tree(path: Path) -> int:
    size = sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    shutil.rmtree(path)
    return size
