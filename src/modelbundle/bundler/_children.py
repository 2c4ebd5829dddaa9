"""Start build children (pip, pip-compile, uv) so that they, and what they start, die with the build.

A child shares the build's process group, so a signal to the group (Ctrl-C,
``docker stop`` of a shell's group) reaches it; but a SIGKILL to the build
alone did not, and left pip (and the pip it had started to prepare a build
environment) running with nobody to read its answer. On Linux each child runs
under ``_child_guard``, a small process that the kernel tells when the build
dies and that then kills the child's whole process group. This costs one
short-lived interpreter (``-I -S``: some tens of milliseconds) per child, and
unlike a ``preexec_fn`` it is safe while the build runs threads (wheels are
fetched in parallel).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_GUARD = Path(__file__).with_name("_child_guard.py")


def run_child(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, **kwargs)`` for a child that must not outlive this process."""
    if sys.platform.startswith("linux"):
        command = [sys.executable, "-I", "-S", str(_GUARD), str(os.getpid()), *command]
    return subprocess.run(command, **kwargs)
