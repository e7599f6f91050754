"""Running VICW on one machine without Docker or a cloud account."""
