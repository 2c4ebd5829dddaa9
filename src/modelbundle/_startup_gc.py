"""Start a server without the cyclic garbage collector, then freeze what start-up made out of its way.

Importing a framework and loading a model allocate hundreds of thousands of
objects that live as long as the server. The collector traverses them again and
again while they are being made (a tenth or more of the iris example's start-up)
and on every full collection afterwards. So a server process pauses collection
before it imports the runtime, and once the service is ready moves everything
alive to the permanent generation (``gc.freeze``) and collects again, for what
requests allocate.

Only a process that paused resumes: an app made inside another program (a test,
a notebook) leaves that program's collector alone.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Called first thing by a process that is about to start a server."""
    global _paused
    _paused = gc.isenabled()
    gc.disable()


def resume_after_startup() -> None:
    """Called once the service is ready (or has failed to start: collection resumes either way)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
