"""`evalkit view`: a local web server with a JSON API over a log folder and a page that reads it."""

from evalkit.view.server import view

__all__ = ["view"]
