"""Imported first by the package: when this process is the ``inferspeed`` command, Ctrl-C
while it is still importing (before ``cli.main``'s own handler is in place) ends it with one
line and status 130, never a traceback. Library users are not affected."""

from __future__ import annotations

import os as _os
import sys as _sys


def _running_as_cli() -> bool:
    argv0 = _os.path.basename(_sys.argv[0]) if _sys.argv else ""
    orig = list(getattr(_sys, "orig_argv", []))
    module = orig[orig.index("-m") + 1 : orig.index("-m") + 2] if "-m" in orig else []
    return argv0 == "inferspeed" or module == ["inferspeed"]


if _running_as_cli():

    def _cli_excepthook(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if issubclass(kind, KeyboardInterrupt):
            _sys.stderr.write("inferspeed: interrupted\n")
            _sys.stderr.flush()
            _os._exit(130)
        _sys.__excepthook__(kind, value, tb)  # type: ignore[arg-type]

    _sys.excepthook = _cli_excepthook
