"""Start build children (pip, pip-compile, uv) so that they die with the build.

They already share the build's process group, so a signal to the group (Ctrl-C,
``docker stop``, Kubernetes) reaches them. A SIGKILL to the build alone does
not, and left pip running on with nobody to read its answer: on Linux each
child asks the kernel for a SIGKILL when its parent dies (``PR_SET_PDEATHSIG``).
What pip starts in turn (an sdist's build backend) is not covered; it ends
when it next writes to the pipe of the pip that died.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1


def _death_signal_setter() -> Callable[[], None] | None:
    """A preexec_fn that asks for SIGKILL when the parent dies; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:  # loaded here, in the parent: the child, between fork and exec, must only call it
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took hold
            os._exit(1)

    return set_death_signal


def run_child(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, **kwargs)`` for a child that must not outlive this process."""
    preexec = _death_signal_setter()
    return subprocess.run(command, preexec_fn=preexec, **kwargs)  # it only calls prctl, loaded beforehand
