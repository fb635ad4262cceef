"""Units and formatting: durations and byte sizes as people read them (foundation layer)."""

from __future__ import annotations

__all__ = ["format_bytes", "format_duration"]


def format_duration(ns: float | None) -> str:
    """A duration with a unit chosen by magnitude: 812 ns, 12.34 µs, 3.456 ms, 1.234 s."""
    if ns is None:
        return "-"
    a = abs(ns)
    if a < 1e3:
        return f"{ns:.0f} ns"
    if a < 1e6:
        return f"{ns / 1e3:.3g} µs" if a >= 1e5 else f"{ns / 1e3:.2f} µs"
    if a < 1e9:
        return f"{ns / 1e6:.2f} ms" if a < 1e8 else f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.3f} s"


def format_bytes(n: int | None) -> str:
    """A size with a binary unit: '3.0 MiB', '64 bytes' ('?' for None; negative deltas keep
    their sign)."""
    if n is None:
        return "?"
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
