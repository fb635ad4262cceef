"""Plain text of ``inferspeed genai``: onnxruntime-genai's loop beside inferspeed's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..units import format_duration

if TYPE_CHECKING:
    from ..tools.genai import BesideGenai

__all__ = ["render_beside_genai"]


def _ratio(r: tuple[float, float | None, float | None]) -> str:
    m, lo, hi = r
    interval = "?" if lo is None or hi is None else f"{lo:.3f}-{hi:.3f}"
    return f"{m:.3f} (95% CI {interval})"


def render_beside_genai(found: BesideGenai) -> str:
    """Both loops' medians per output token and TTFT, and the ratios genai / inferspeed."""
    g, i = found.per_token_ns, found.ttft_ns
    fmt = format_duration
    tokens = (
        f"equal in every round ({found.gen_tokens} per generation)"
        if found.tokens_equal
        else "DIFFERENT in some round: the two loops did not generate the same text"
    )
    return "\n".join(
        [
            f"model      {found.folder}  (onnxruntime-genai {found.genai_version})",
            f"generation prompt {found.prompt_tokens} tokens, {found.gen_tokens} output tokens, batch 1; "
            f"{found.rounds} rounds, each one generation of each loop in a random order "
            f"(--seed {found.seed})",
            f"tokens     {tokens}",
            "",
            f"{'':<18}{'onnxruntime-genai':>18} {'inferspeed':>12}   genai / inferspeed, median of rounds",
            f"{'per output token':<18}{fmt(g['genai']):>18} {fmt(g['inferspeed']):>12}   "
            f"{_ratio(found.per_token_ratio)}",
            f"{'TTFT':<18}{fmt(i['genai']):>18} {fmt(i['inferspeed']):>12}   {_ratio(found.ttft_ratio)}",
            "",
            "per output token: genai's generate_next_token() call timed from Python (a decode step and its "
            "sampling), inferspeed's decode step and sampling timed in C++; the ratio above 1 is what "
            "genai's loop adds to the model's calls",
        ]
    )
