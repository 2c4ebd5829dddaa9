"""``python _child_guard.py PARENT_PID COMMAND...``: run COMMAND, and end it, with all it started, when PARENT dies.

Run by ``_children`` with ``-I -S`` (only the standard library; nothing from
the project is imported). The guard asks the kernel for a SIGTERM when its
parent (the build) dies, however it dies (``PR_SET_PDEATHSIG``), and runs
COMMAND in a process group of its own, so that one ``killpg`` reaches what
COMMAND started too (pip's isolated build environments). Signals sent to the
guard while the build lives (Ctrl-C, a stop) are passed on to that group.
The guard leaves COMMAND's output and exit status as they are: a child killed
by a signal makes the guard die of the same signal.
"""

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1
_PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main() -> int:
    parent, command = int(sys.argv[1]), sys.argv[2:]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the build died before the request took hold
        return 1
    child = subprocess.Popen(command, process_group=0)

    def on_signal(signum: int, frame: object) -> None:
        if os.getppid() != parent:  # the build is gone: nobody will read what the child says
            os.killpg(child.pid, signal.SIGKILL)
            os._exit(128 + signum)
        os.killpg(child.pid, signum)

    for signum in _PASSED_ON:
        signal.signal(signum, on_signal)
    if os.getppid() != parent:  # died between Popen and the handlers
        on_signal(signal.SIGTERM, None)
    code = child.wait()
    if code < 0:  # die of the child's signal, so the build reads the child's status
        with contextlib.suppress(OSError):  # SIGKILL cannot be handled; SIGPIPE is ignored by Python
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())
