"""Layer 6, tools: workflows built from measurement and analysis (profile, tradeoff, sweep)."""
