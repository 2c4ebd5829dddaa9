"""pip's own account of a resolution it could not make, read for the one-line errors of ``resolve_extras``."""

from __future__ import annotations

import re

from ...bundler import last_lines

#: pip's lines for the requirements and constraints it was given, in its "conflict is caused by" list
REQUESTED = re.compile(r"^The user requested (?P<constraint>\(constraint\) )?(?P<spec>.+)$")


def conflict_lines(output: str) -> list[str]:
    """pip's "The conflict is caused by:" list, one entry per line; [] when pip gave none."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("WARNING")]
    for index, line in enumerate(lines):
        if line.startswith("The conflict is caused by"):
            cause = []
            for entry in lines[index + 1 :]:
                if entry.startswith(("To fix this", "Additionally", "ERROR")):
                    break
                cause.append(entry)
            return cause
    return []


def pip_failure(output: str) -> str:
    """What explains a failed resolution, on one line: pip's "conflict is caused by" list when there is one."""
    cause = conflict_lines(output)
    if not cause:
        return last_lines("\n".join(line for line in output.splitlines() if not line.startswith("WARNING")), 4)
    # the "depends on" lines are often one per release of one dependency; what was requested is what matters
    requested = [line for line in cause if REQUESTED.match(line)]
    depends = [line for line in cause if not REQUESTED.match(line)]
    shown = depends[:3] + ([f"({len(depends) - 3} more like these)"] if len(depends) > 3 else [])
    return "the conflict is caused by: " + "; ".join(shown + requested)
