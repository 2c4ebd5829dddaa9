"""Where each dependency is served: ``MODELBUNDLE_DEPENDENCY_<NAME>_URL``.

``--split`` sets these for its worker processes; in containers and on Kubernetes the
deployment does (``bundle export kubernetes`` writes them with the Services' DNS names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ...errors import ServeError

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def url_variable(service_name: str) -> str:
    """The variable holding the base URL of the service called ``service_name``."""
    return f"MODELBUNDLE_DEPENDENCY_{_NOT_ALNUM.sub('_', service_name).upper()}_URL"


def dependency_urls(service_names: Iterable[str], env: Mapping[str, str]) -> dict[str, str]:
    """The base URL of each named dependency; a missing or malformed variable fails in one line naming it."""
    urls = {}
    for name in service_names:
        variable = url_variable(name)
        url = env.get(variable, "").strip()
        if not url:
            raise ServeError(f"{variable} is not set: it gives the URL where dependency {name!r} is served (e.g. http://{name}:3000)")
        if not url.startswith(("http://", "https://")):
            raise ServeError(f"{variable}={url!r} is not an http:// or https:// URL")
        urls[name] = url.rstrip("/")
    return urls
