"""Built-in providers, each registered through the same pluggy hook third parties use."""
