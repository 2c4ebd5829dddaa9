"""Names, labels and image references that Kubernetes accepts, derived from a bundle's name and version."""

from __future__ import annotations

import re

from ...errors import ExportError
from .._image_reference import parse_image_reference

#: a DNS-1035 label: what a Service name must be (and so, for one name everywhere, every resource here)
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: the prefix of the labels and annotations modelbundle itself sets
LABEL_PREFIX = "modelbundle.dev/"


def resource_name(bundle_name: str) -> str:
    """A DNS-1035 label for a bundle name: lowercase, ``.``/``_`` become ``-``, a leading digit gets ``mb-``."""
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", bundle_name.lower())).strip("-")
    if not name[:1].isalpha():
        name = f"mb-{name}"
    return name[:63].rstrip("-")


def check_resource_name(name: str, what: str = "--name") -> str:
    if not _DNS_LABEL.match(name):
        raise ExportError(
            f"{what}: {name!r} is not a valid Kubernetes name; use 1-63 lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return name


def label_value(value: str) -> str:
    """``value`` cut to what a label value may hold (63 characters, alphanumeric at both ends)."""
    cut = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:63]
    cut = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cut)
    assert _LABEL_VALUE.match(cut), cut
    return cut


def check_image(image: str) -> str:
    """``image`` if it is a valid image reference, else an ``ExportError`` that says what is wrong."""
    parse_image_reference(image, "--image")
    return image


def image_pinned(image: str) -> bool:
    """True when the reference names a digest or a tag other than ``latest``: safe to cache on the node."""
    return parse_image_reference(image).pinned
