"""Human-readable reports of results."""

from .text import format_duration, render_info, render_result

__all__ = ["format_duration", "render_info", "render_result"]
