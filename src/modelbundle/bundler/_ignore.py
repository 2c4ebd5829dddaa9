"""Which project files a bundle leaves out, and which look like secrets.

Defaults leave out VCS folders, virtualenvs, caches, ``.env`` files and
private keys; a ``.bundleignore`` (gitignore syntax) adds rules. Whatever is
still included and looks like a secret is reported by ``_secrets``. An include
glob never follows a link out of the project.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

try:
    import pathspec
except ImportError:  # a runtime-only install: reported when rules are read
    pathspec = None  # type: ignore[assignment]

from .._install_hints import needs_build_tool
from ..errors import BuildError

IGNORE_FILE = ".bundleignore"
DEFAULT_IGNORES = (
    ".git/", ".hg/", ".svn/", "__pycache__/", "*.py[cod]", ".venv/", "venv/", ".venv-*/", "env/.*/",
    ".tox/", ".nox/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".ipynb_checkpoints/",
    "*.egg-info/", "build/", "dist/", ".DS_Store",
    ".env", ".env.*", "id_rsa", "id_rsa.*", "id_dsa", "id_ecdsa", "id_ed25519", "*.pem", "*.key",
    ".aws/", ".ssh/", ".netrc", ".pypirc",
)


class IgnoreRules:
    """The default rules plus the project's .bundleignore plus --exclude patterns."""

    def __init__(self, root: Path, extra_excludes: Iterable[str] = ()) -> None:
        lines = list(DEFAULT_IGNORES)
        ignore_file = root / IGNORE_FILE
        if ignore_file.is_file():
            lines.extend(ignore_file.read_text().splitlines())
        lines.extend(extra_excludes)
        if pathspec is None:
            raise BuildError(needs_build_tool("reading the ignore rules", "pathspec"))
        self._spec = pathspec.GitIgnoreSpec.from_lines(lines)  # "gitwildmatch" is deprecated in pathspec 1.x

    def ignored(self, relative: Path, is_dir: bool = False) -> bool:
        posix = relative.as_posix() + ("/" if is_dir else "")
        return self._spec.match_file(posix)


def glob_files(root: Path, patterns: Iterable[str], rules: IgnoreRules, outside: set[Path] | None = None) -> set[Path]:
    """Files under ``root`` matching any include glob (``**`` allowed), minus ignored ones.

    A link whose target is outside ``root`` (or a file reached through one) is left out, and added to ``outside``.
    """
    real_root = root.resolve()
    found: set[Path] = set()
    for pattern in patterns:
        if pattern.startswith(("/", "\\")) or ".." in Path(pattern).parts:
            raise BuildError(f"--include {pattern!r}: patterns are relative to {root} and may not leave it")
        for path in root.glob(pattern):
            candidates = [path] if path.is_file() else _files_below(path)
            for candidate in candidates:
                relative = candidate.relative_to(root)
                if any(rules.ignored(Path(*relative.parts[:i]), is_dir=True) for i in range(1, len(relative.parts))) or rules.ignored(relative):
                    continue
                if not candidate.resolve().is_relative_to(real_root):
                    if outside is not None:
                        outside.add(relative)
                    continue
                found.add(relative)
    return found


def _files_below(folder: Path) -> list[Path]:
    """Every file under ``folder``, not descending into linked folders (a link to a file is kept, and checked)."""
    files = []
    for directory, _, filenames in os.walk(folder, followlinks=False):
        files += [Path(directory, name) for name in filenames if Path(directory, name).is_file()]
    return files
