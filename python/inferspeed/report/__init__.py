"""Layer 7, reports: results as people read them (terminal text, Markdown, CSV, pyperf JSON,
HTML with plots)."""
