"""The package's version (foundation layer: imported by the result schema, reports and the CLI)."""

__version__ = "0.1.0"
