"""What an installed environment carries that a Lambda function never uses, and its removal.

Removed: bytecode caches, the ``bin/`` scripts pip writes (their shebangs name the
build machine's Python), ``tests``/``test`` packages nested inside a package, and
``*.pyi`` stubs. Kept on purpose: ``*.dist-info`` (importlib.metadata reads
versions from it, and the artifact loader checks framework versions that way),
and data files such as ``.rst`` or ``.txt`` (scikit-learn reads its dataset
descriptions at run time).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_TEST_DIRS = frozenset({"tests", "test"})


def slim(site: Path) -> int:
    """Delete what Lambda never needs from ``site`` (a ``pip install --target`` folder); the bytes freed."""
    freed = 0
    scripts = site / "bin"
    if scripts.is_dir():
        freed += _remove_tree(scripts)
    for directory, dirnames, filenames in os.walk(site):
        here = Path(directory)
        for name in list(dirnames):
            if name == "__pycache__" or (name in _TEST_DIRS and here != site and (here / "__init__.py").is_file()):
                freed += _remove_tree(here / name)
                dirnames.remove(name)
        for name in filenames:
            if name.endswith((".pyi", ".pyc")):
                path = here / name
                freed += path.lstat().st_size
                path.unlink()
    return freed


def _remove_tree(path: Path) -> int:
    size = sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    shutil.rmtree(path)
    return size
