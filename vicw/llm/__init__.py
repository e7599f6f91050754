"""LLM providers behind one small interface (see base.py); `build_provider` picks one from settings."""
