"""``python -m modelbundle.healthcheck``: exit 0 when the local server answers /readyz with 200.

The images' HEALTHCHECK runs it (the base images have no curl). Stdlib only, so
a check costs one interpreter start. The port is the server's: ``MODELBUNDLE_PORT``
(default 3000), or the first argument.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


def check(port: int, path: str = "/readyz") -> tuple[bool, str]:
    """(ready, what happened) for http://127.0.0.1:PORT/readyz."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str]) -> int:
    port = int(argv[0]) if argv else int(os.environ.get("MODELBUNDLE_PORT") or 3000)
    ready, message = check(port)
    print(message)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
