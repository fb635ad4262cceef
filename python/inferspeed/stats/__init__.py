"""Layer 2, statistics: pure functions from arrays of samples to values (summaries, intervals)
and to findings (stability diagnostics). Imports only the foundation."""
