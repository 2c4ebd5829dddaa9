"""Kubernetes resource quantities (``500m``, ``2``, ``512Mi``): checked here, not by the API server."""

from __future__ import annotations

import re
from decimal import Decimal

from ...errors import ExportError

_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
MIB = 1024**2


def parse_quantity(value: str, what: str) -> Decimal:
    """The amount a quantity stands for (cores or bytes); ``ExportError`` naming ``what`` if it is not one."""
    match = _QUANTITY.match(value.strip()) if value.strip() == value else None
    if match is None:
        hint = ""
        if re.match(r"^[0-9.]+\s*[kKMGTPE]i?[bB]$", value):
            hint = " (drop the B: 512Mi is 512 MiB, 1G is 10^9 bytes)"
        elif value.endswith("%") or " " in value:
            hint = " (no spaces or %)"
        raise ExportError(
            f"{what}: {value!r} is not a Kubernetes quantity{hint}; "
            "use e.g. 500m or 2 for CPU, 512Mi or 4Gi for memory"
        )
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    if suffix in _BINARY:
        return number * Decimal(1024 ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number * Decimal(10) ** _DECIMAL[suffix]
    return Decimal(number * Decimal(10) ** int(suffix[1:]))


def mebibytes(size: int) -> str:
    """A byte count as a whole number of ``Mi``, rounded up."""
    return f"{-(-size // MIB)}Mi"
