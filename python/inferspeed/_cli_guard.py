"""Imported first by the package: when this process is the ``inferspeed`` command, Ctrl-C
while it is still importing (before ``cli.main``'s own handler is in place) ends it with one
line and status 130, never a traceback. A worker process that multiprocessing spawned (a
sweep cell, ``--processes``) ignores Ctrl-C while it starts up (an interrupted import can
surface as any error, e.g. numpy's ImportError); ``processes._child`` turns it back on just
before the work, and the parent passes Ctrl-C on until the worker answers.

SIGTERM (what CI runners and container stops send) is handled by the command like Ctrl-C: its
handler raises KeyboardInterrupt, so every path that keeps a partial result keeps it, and the
exit status is 143 instead of 130 (``interrupted_status``). A long ONNX Runtime call is stopped
by either (the core sets ORT's terminate flag for both)."""

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

#: SIGTERM arrived in the command.
terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    global terminated
    terminated = True
    raise KeyboardInterrupt("terminated (SIGTERM)")


def interrupted_status() -> int:
    """The exit status of a run stopped by a signal: 143 after SIGTERM, 130 after Ctrl-C."""
    return 143 if terminated else 130


if _running_as_cli():
    import signal as _signal

    if _signal.getsignal(_signal.SIGTERM) is _signal.SIG_DFL:
        _signal.signal(_signal.SIGTERM, _on_sigterm)

if _running_as_cli() or _spawned_worker():
    _quiet = not _running_as_cli()

    def _cli_excepthook(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if issubclass(kind, KeyboardInterrupt):
            if not _quiet:
                _sys.stderr.write("inferspeed: terminated\n" if terminated else "inferspeed: interrupted\n")
                _sys.stderr.flush()
            _os._exit(interrupted_status())
        _sys.__excepthook__(kind, value, tb)  # type: ignore[arg-type]

    _sys.excepthook = _cli_excepthook
