"""Terminal niceties with rich: a progress bar with ETA for runs that take more than a second,
and colour for the summary. Both only on a terminal: output that goes to a file or a pipe, or
runs with ``--quiet``, stays the plain text of :mod:`inferspeed.report.text`.

The progress bar is drawn by a thread that wakes REFRESH_PER_SECOND times a second while the
C++ loop measures with the GIL released; it reads only the wall clock, never the loop. On a
machine with one core it would compete with the measurement, so it is off there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

__all__ = ["MIN_SECONDS", "REFRESH_PER_SECOND", "interactive", "print_summary", "progress"]

#: Runs expected to take less than this get no progress bar.
MIN_SECONDS = 1.0
REFRESH_PER_SECOND = 4


def interactive(stream: IO[str] | None = None) -> bool:
    """Is ``stream`` (default stderr) a terminal we may draw on? ``INFERSPEED_PLAIN=1`` says no,
    ``INFERSPEED_FORCE_TERMINAL=1`` yes (tests)."""
    if os.environ.get("INFERSPEED_PLAIN"):
        return False
    if os.environ.get("INFERSPEED_FORCE_TERMINAL"):
        return True
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


@contextlib.contextmanager
def progress(seconds: float | None, description: str, enabled: bool = True) -> Iterator[None]:
    """A progress bar on stderr over an expected ``seconds`` (None: unknown; no bar), filled by
    elapsed wall time, with the time left; removed when the block ends."""
    if (
        not enabled
        or seconds is None
        or seconds < MIN_SECONDS
        or not interactive()
        or (os.cpu_count() or 1) < 2
    ):
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(
        file=sys.stderr, force_terminal=True if os.environ.get("INFERSPEED_FORCE_TERMINAL") else None
    )
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        auto_refresh=False,
    )
    task = bar.add_task(description, total=seconds)
    stop = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not stop.wait(1.0 / REFRESH_PER_SECOND):
            bar.update(task, completed=min(seconds, time.monotonic() - start))
            bar.refresh()

    with bar:
        thread = threading.Thread(target=tick, name="inferspeed-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def print_summary(text: str, file: IO[str] | None = None) -> None:
    """Print a summary from report.text: plain, or on a terminal with WARNING lines in yellow and
    the section names bold."""
    out = file or sys.stdout
    if not interactive(out):
        print(text, file=out)
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, force_terminal=True if os.environ.get("INFERSPEED_FORCE_TERMINAL") else None)
    for line in text.split("\n"):
        styled = Text(line)
        if line.startswith("WARNING"):
            styled.stylize("yellow")
        elif line[:10].strip() and line[:1] != " " and len(line) > 11 and line[10] == " ":
            styled.stylize("bold", 0, 10)
        console.print(styled, soft_wrap=True, highlight=False)
