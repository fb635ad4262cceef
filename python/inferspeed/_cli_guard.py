"""Imported first by the package: when this process is the ``inferspeed`` command, Ctrl-C
while it is still importing (before ``cli.main``'s own handler is in place) ends it with one
line and status 130, never a traceback. A worker process that multiprocessing spawned (a
sweep cell, ``--processes``) ignores Ctrl-C while it starts up (an interrupted import can
surface as any error, e.g. numpy's ImportError); ``processes._child`` turns it back on just
before the work, and the parent passes Ctrl-C on until the worker answers."""

from __future__ import annotations

import os as _os
import sys as _sys


def _running_as_cli() -> bool:
    argv0 = _os.path.basename(_sys.argv[0]) if _sys.argv else ""
    orig = list(getattr(_sys, "orig_argv", []))
    module = orig[orig.index("-m") + 1 : orig.index("-m") + 2] if "-m" in orig else []
    return argv0 == "inferspeed" or module == ["inferspeed"]


def _spawned_worker() -> bool:
    orig = list(getattr(_sys, "orig_argv", []))
    return any("multiprocessing.spawn" in a and "spawn_main" in a for a in orig)


if _spawned_worker():
    import signal as _signal

    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)

if _running_as_cli() or _spawned_worker():
    _quiet = not _running_as_cli()

    def _cli_excepthook(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if issubclass(kind, KeyboardInterrupt):
            if not _quiet:
                _sys.stderr.write("inferspeed: interrupted\n")
                _sys.stderr.flush()
            _os._exit(130)
        _sys.__excepthook__(kind, value, tb)  # type: ignore[arg-type]

    _sys.excepthook = _cli_excepthook
