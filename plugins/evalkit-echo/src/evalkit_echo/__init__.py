"""evalkit-echo: an example third-party evalkit provider."""
