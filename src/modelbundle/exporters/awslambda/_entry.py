"""The module at the root of the zip that Lambda imports: small, stdlib-only, delegating to LambdaHandler."""

from __future__ import annotations

#: the module at the zip's root, and the handler setting of the function
HANDLER_MODULE = "modelbundle_handler"
HANDLER = f"{HANDLER_MODULE}.handler"
#: the folder of the zip that holds the bundle (with its RECORD)
BUNDLE_DIR = "modelbundle_bundle"

_SOURCE = '''\
"""AWS Lambda entry point of a modelbundle bundle, written by `bundle export lambda`.

Handler: {handler}. The bundle is in {bundle_dir}{where}. Importing
this module (Lambda's init phase) verifies the bundle, loads its artifacts and
runs the service's setup(), so that invocations only answer requests.
"""

import os

# Lambda's only writable folder: referenced weights are fetched there at cold start (an image may set its own)
os.environ.setdefault("MODELBUNDLE_HOME", "/tmp/modelbundle")

from modelbundle import _startup_gc  # noqa: E402

_startup_gc.pause()  # until the service is ready: init allocates what lives as long as the sandbox
from modelbundle.exporters.awslambda import LambdaHandler  # noqa: E402

_HANDLER = LambdaHandler.from_bundle(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "{bundle_dir}"), buffer_streams={buffer_streams}
)


def handler(event, context):
    """API Gateway REST (v1) and HTTP API (v2) events, Function URL events, and {{"api": ..., "input": ...}}."""
    return _HANDLER(event, context)
'''


def handler_source(bundle_dir: str = BUNDLE_DIR, *, buffer_streams: bool = False) -> str:
    """The module's text; ``bundle_dir`` is relative to the module (the zip) or absolute (/opt/bundle in an image);
    ``buffer_streams``: streaming APIs answer with their whole stream (``bundle export lambda --buffer-streams``)."""
    where = "" if bundle_dir.startswith("/") else "/ beside this file"
    return _SOURCE.format(handler=HANDLER, bundle_dir=bundle_dir, where=where, buffer_streams=buffer_streams)
