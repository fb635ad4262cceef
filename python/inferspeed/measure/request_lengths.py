"""Each generation request's own prompt and output lengths under load (``Config.request_lengths``),
as vLLM's serving benchmark gives them: drawn around the plan's lengths, or read from a file.

- ``"spread=R"`` (0 <= R < 1): each request's prompt and output tokens are drawn uniformly,
  integers, from [L(1 - R), L(1 + R)] around the prompt and output tokens of the run (vLLM's
  ``--random-range-ratio``; the bounds rounded down, the prompt at least 1 token, the output
  at least 2), from ``Config.seed``;
- a path: a JSONL file, each line ``{"prompt_tokens": int, "output_tokens": int}``, used in
  order and cycled when there are more requests than lines.

The streams are built for the longest lengths (:attr:`RequestLengths.max_prompt` and
:attr:`RequestLengths.max_output`); a request's prompt is the first of the plan's prompt ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Config, length_spread
from ..errors import ConfigError

__all__ = ["RequestLengths", "read_lengths_file", "request_lengths", "spread_bounds"]

#: The fewest tokens a request's prompt and output may have (one decode step at least).
LEAST_PROMPT = 1
LEAST_OUTPUT = 2


@dataclass(frozen=True)
class RequestLengths:
    """How each request's lengths are chosen: uniformly within ``prompt`` and ``output`` ([low,
    high], with ``spread``), or each line's of ``path`` in order (``prompt`` and ``output`` hold
    every line's)."""

    prompt: np.ndarray
    output: np.ndarray
    spread: float | None = None
    path: str | None = None
    seed: int = 0

    @property
    def max_prompt(self) -> int:
        return int(self.prompt.max())

    @property
    def max_output(self) -> int:
        return int(self.output.max())

    @property
    def mean_output(self) -> float:
        """The mean output tokens of a request (the middle of a spread's range)."""
        return float(self.output.mean())

    def draw(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` requests' (prompt tokens, output tokens), int64 each."""
        if self.spread is None:
            lines = np.arange(count) % self.prompt.size
            return self.prompt[lines].astype(np.int64), self.output[lines].astype(np.int64)
        # Streams of their own, apart from the prompt ids' and the arrivals'.
        prompt, output = (np.random.default_rng([self.seed, 0x6C656E, k]) for k in (0, 1))
        return (
            prompt.integers(self.prompt[0], self.prompt[1] + 1, size=count, dtype=np.int64),
            output.integers(self.output[0], self.output[1] + 1, size=count, dtype=np.int64),
        )

    def describe(self) -> dict[str, Any]:
        """The Result's record of the lengths' source: ``{"source": "spread", "spread": R,
        "prompt_range": [lo, hi], "output_range": [lo, hi]}`` or ``{"source": "file", "path":
        ..., "lines": N}``."""
        if self.spread is None:
            return {"source": "file", "path": self.path, "lines": int(self.prompt.size)}
        return {
            "source": "spread",
            "spread": self.spread,
            "prompt_range": [int(v) for v in self.prompt],
            "output_range": [int(v) for v in self.output],
        }


def spread_bounds(length: int, spread: float, least: int) -> tuple[int, int]:
    """[L(1 - R), L(1 + R)] rounded down (as vLLM's random dataset), at least ``least``."""
    lo = max(least, int(length * (1 - spread)))
    return lo, max(lo, int(length * (1 + spread)))


def _line_lengths(path: str, number: int, text: str) -> tuple[int, int]:
    """One line's (prompt tokens, output tokens); ConfigError naming the file and the line."""
    where = f"request lengths file {path}, line {number}"
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        expected = '{"prompt_tokens": int, "output_tokens": int}'
        raise ConfigError(f"{where}: expected {expected}, got {text.strip()}")
    values = []
    for key, least in (("prompt_tokens", LEAST_PROMPT), ("output_tokens", LEAST_OUTPUT)):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            got = "nothing" if key not in item else repr(value)
            raise ConfigError(f"{where}: {key} must be an integer of at least {least}, got {got}")
        values.append(value)
    return values[0], values[1]


def read_lengths_file(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Every line's (prompt tokens, output tokens) of a JSONL file (blank lines skipped);
    ConfigError naming the file, and the line where one is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read request lengths file {path}: {exc}") from None
    pairs = [_line_lengths(path, n, text) for n, text in enumerate(lines, 1) if text.strip()]
    if not pairs:
        raise ConfigError(f"request lengths file {path} holds no lengths")
    prompt, output = zip(*pairs, strict=True)
    return np.asarray(prompt, dtype=np.int64), np.asarray(output, dtype=np.int64)


def request_lengths(config: Config, prompt_tokens: int, gen_tokens: int) -> RequestLengths | None:
    """The lengths ``config.request_lengths`` gives (around ``prompt_tokens`` and ``gen_tokens``
    for a spread); None for every request of those lengths."""
    spec = config.request_lengths
    if spec is None:
        return None
    spread = length_spread(spec)
    if spread is None:
        prompt, output = read_lengths_file(spec)
        return RequestLengths(prompt, output, path=spec)
    return RequestLengths(
        np.asarray(spread_bounds(prompt_tokens, spread, LEAST_PROMPT), dtype=np.int64),
        np.asarray(spread_bounds(gen_tokens, spread, LEAST_OUTPUT), dtype=np.int64),
        spread=spread,
        seed=config.seed,
    )
