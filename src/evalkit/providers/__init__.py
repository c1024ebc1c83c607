"""Built-in providers, each registered through the same pluggy hook third parties use.

One subpackage per family (common/ holds what several share); `builtin.py` lists them all.
"""
