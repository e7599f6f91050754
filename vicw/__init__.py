"""VICW: a virtually infinite context window for LLM chat."""

__version__ = "0.1.0"
