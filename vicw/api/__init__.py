"""HTTP edge of the chat function."""
