"""One function call in a fresh process (spawn), with a crash reported as such.

``run_in_process(fn, *args)`` returns ``fn(*args)`` computed in a new process. If the process
dies without answering (ONNX Runtime crashed, the out-of-memory killer, ``kill -9``), it
raises :class:`~inferspeed.errors.WorkerCrashed` naming the signal or exit status, so a sweep
or a multi-process run can record it and go on. An exception raised by ``fn`` comes back as
the same inferspeed error class (others as ``InferspeedError``), with its message. On Ctrl-C
the child (in the same process group) sees the signal too (if it has not answered within
FORWARD_AFTER seconds, the parent sends it SIGINT); the parent waits up to INTERRUPT_GRACE
seconds for what the child measured and returns it with ``interrupted=True``.

``INFERSPEED_WORKER_SELF_SIGNAL=SIGSEGV`` (any signal name) makes every worker process kill
itself with that signal before it runs: a way to check crash handling, in our tests and in
tools that wrap inferspeed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import errors
from ..errors import InferspeedError, WorkerCrashed

__all__ = ["INTERRUPT_GRACE", "SELF_SIGNAL_ENV", "describe_exit", "run_in_process"]

INTERRUPT_GRACE = 5.0
#: Seconds to wait for a child that saw Ctrl-C itself before sending it SIGINT.
FORWARD_AFTER = 0.3
SELF_SIGNAL_ENV = "INFERSPEED_WORKER_SELF_SIGNAL"
_POLL = 0.05


def describe_exit(exitcode: int | None) -> str:
    """'was killed by SIGSEGV', 'was killed by SIGKILL (as the out-of-memory killer does)',
    'exited with status 3'."""
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (as the out-of-memory killer does)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # Ignored while the process started (see _cli_guard); from here on Ctrl-C stops the work
    # and the partial result goes back to the parent.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    name = os.environ.get(SELF_SIGNAL_ENV)
    if name:
        os.kill(os.getpid(), signal.Signals[name.upper()])
        time.sleep(1)
    try:
        conn.send(("ok", fn(*args)))
    except InferspeedError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    except KeyboardInterrupt:
        conn.send(("error", "KeyboardInterrupt", "interrupted"))
    except BaseException as exc:  # anything else: its text, as an inferspeed error
        conn.send(("error", "InferspeedError", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _receive(conn: Any, process: Any, deadline: float | None) -> tuple[Any, ...] | None:
    """The child's message; None when it died without one (or the deadline passed)."""
    while True:
        if conn.poll(_POLL):
            try:
                msg: tuple[Any, ...] = conn.recv()
                return msg
            except EOFError:
                return None
        if not process.is_alive() and not conn.poll(0):
            return None
        if deadline is not None and time.monotonic() > deadline:
            return None


def run_in_process(fn: Callable[..., Any], *args: Any, what: str = "worker process") -> tuple[Any, bool]:
    """(``fn(*args)`` from a fresh spawned process, interrupted): see the module's docstring."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, fn, args), daemon=True)
    # The child starts with SIGINT ignored (an ignored signal stays ignored across exec, and
    # Python keeps it so), so Ctrl-C cannot break its start-up; _child turns it back on.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        process.start()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    child.close()
    interrupted = False
    try:
        try:
            msg = _receive(parent, process, None)
        except KeyboardInterrupt:
            interrupted = True
            # A terminal's Ctrl-C reaches the child too; `kill -INT` of this process does not:
            # pass it on when the child has not answered at once.
            # Passed on every FORWARD_AFTER seconds: a worker still starting up ignores it.
            give_up = time.monotonic() + INTERRUPT_GRACE
            msg = _receive(parent, process, time.monotonic() + FORWARD_AFTER)
            while (
                msg is None and process.is_alive() and process.pid is not None and time.monotonic() < give_up
            ):
                os.kill(process.pid, signal.SIGINT)
                msg = _receive(parent, process, min(give_up, time.monotonic() + FORWARD_AFTER))
        if msg is None:
            if process.is_alive():
                process.terminate()
            process.join(1.0)
            if interrupted:
                raise KeyboardInterrupt(f"{what} interrupted before it measured anything")
            raise WorkerCrashed(f"{what} {describe_exit(process.exitcode)}", process.exitcode)
        if msg[0] == "error":
            if msg[1] == "KeyboardInterrupt":
                raise KeyboardInterrupt(msg[2])
            cls = getattr(errors, msg[1], InferspeedError)
            if not (isinstance(cls, type) and issubclass(cls, InferspeedError)):
                cls = InferspeedError
            raise cls(msg[2])
        return msg[1], interrupted
    finally:
        parent.close()
        process.join(1.0)
        if process.is_alive():
            process.kill()
