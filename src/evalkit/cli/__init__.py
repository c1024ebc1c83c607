"""The evalkit command line."""
