"""Layer 5, analysis: decisions over Results (comparison with significance, capacity search)."""
