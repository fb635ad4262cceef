"""Following a run from a test: the phases inferspeed reports with ``INFERSPEED_EVENTS``.

A test that interrupts, kills or times a run waits for the phase it wants to hit (the child
says when it got there: one JSON line per phase, see ``inferspeed/events.py``) instead of
sleeping a fixed time and hoping start-up is over: start-up takes 2 s on a quiet machine and
several on a busy one. Waiting is bounded only against a hang (``timeout``), never as a check
of speed; speed limits are measured from the event.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from inferspeed.events import EVENTS_ENV

#: How long a child may take to reach a phase before the test gives up: a hang guard, not a
#: speed check (a phase reached slowly on a loaded machine is still reached).
HANG_TIMEOUT = 120.0
_POLL = 0.01


class Events:
    """The events file of the runs a test starts (one file may follow several processes: a
    sweep's cells each add their own lines, with their own pid)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with ``INFERSPEED_EVENTS`` set."""
        return {**(os.environ if base is None else base), EVENTS_ENV: str(self.path)}

    def read(self) -> list[dict[str, Any]]:
        """Every complete line so far (the last one may be half written: skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def names(self) -> list[str]:
        return [e["event"] for e in self.read()]

    def last(self, name: str) -> dict[str, Any]:
        """The latest ``name`` event (its ``time`` is the reporting process's time.time())."""
        found = [e for e in self.read() if e["event"] == name]
        assert found, f"no {name!r} event; reported: {self.names()}"
        return found[-1]

    @classmethod
    def of_this_process(cls, monkeypatch: pytest.MonkeyPatch, path: str | os.PathLike[str]) -> Events:
        """Events of measurements made in this process (and processes it starts) from now
        to the end of the test."""
        monkeypatch.setenv(EVENTS_ENV, os.fspath(path))
        return cls(path)

    def wait(
        self,
        *sequence: str,
        proc: subprocess.Popen[Any] | None = None,
        timeout: float = HANG_TIMEOUT,
        stop: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Wait until the events ``sequence`` have happened in that order (others may come in
        between) and return the last one. Fails when ``proc`` exits first or after
        ``timeout`` seconds; returns {} at once when ``stop`` is set (the waiter is told to
        give up: the run it waited for is over)."""
        if not sequence:
            raise ValueError("wait for at least one event")
        give_up = time.monotonic() + timeout
        while True:
            found = _match(self.read(), sequence)
            if found is not None:
                return found
            if stop is not None and stop.is_set():
                return {}
            if proc is not None and proc.poll() is not None:
                found = _match(self.read(), sequence)  # written just before it exited
                if found is not None:
                    return found
                raise AssertionError(
                    f"the child exited ({proc.returncode}) before reporting {' then '.join(sequence)}; "
                    f"it reported {self.names()}{_stderr_tail(proc)}"
                )
            if time.monotonic() > give_up:
                raise AssertionError(
                    f"no {' then '.join(sequence)} within {timeout:.0f} s; reported: {self.names()}"
                )
            time.sleep(_POLL)


def _stderr_tail(proc: subprocess.Popen[Any]) -> str:
    """What the exited child wrote to its stderr (when it is a pipe), to show why it ended."""
    if proc.stderr is None or proc.stderr.closed:
        return ""
    text = proc.stderr.read()
    text = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"; its stderr ends: {text[-2000:]}" if text else ""


def _match(events: list[dict[str, Any]], sequence: tuple[str, ...]) -> dict[str, Any] | None:
    k = 0
    for e in events:
        if e["event"] == sequence[k]:
            k += 1
            if k == len(sequence):
                return e
    return None
