"""The viewer's web app: a JSON API over a log folder and the static page that reads it."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from evalkit.analysis.compare import check_comparable
from evalkit.errors import EvalkitError
from evalkit.view.catalog import Catalog
from evalkit.view.index import LogChangedError, Snapshot
from evalkit.view.queries import SampleQuery, compare_runs, log_of, run_detail, sample_detail, sample_page, select

STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "evalkit_view_token"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class TokenGate:
    """Answers 401 unless the request carries the access token: `?token=` (which also sets a
    cookie for the page's own requests), the cookie, or `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token")
        bearer = request.headers.get("authorization", "")
        offered = [given, request.cookies.get(TOKEN_COOKIE), bearer[7:] if bearer.lower().startswith("bearer ") else None]
        if not any(value and hmac.compare_digest(value.encode(), self.token.encode()) for value in offered):
            await OrjsonResponse({"error": "an access token is needed: open the URL evalkit view printed"},
                                 status_code=401)(scope, receive, send)
            return

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and given:
                cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class SecurityHeaders:
    """Adds the headers that keep the page from loading anything from elsewhere."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return max(0, int(value))
    except ValueError:
        raise HTTPException(400, f"{name} must be a whole number") from None


class ViewApi:
    """The JSON endpoints, over the logs under one folder."""

    def __init__(self, log_dir: Path) -> None:
        self.catalog = Catalog(log_dir)

    def _index(self, request: Request) -> tuple[Snapshot, str]:
        name = request.query_params.get("log", "")
        return self._named(name), name

    def _named(self, name: str) -> Snapshot:
        path = self.catalog.resolve(name)
        if path is None:
            raise HTTPException(404, f"no log named {name!r} in the log folder")
        index = self.catalog.indexes.get(path)
        if index.header is None:
            raise HTTPException(422, f"{name}: no evalkit log header on line 1; is this an evalkit log?")
        return index

    def runs(self, request: Request) -> Response:
        return OrjsonResponse({"log_dir": str(self.catalog.log_dir), "runs": self.catalog.runs()})

    def run(self, request: Request) -> Response:
        index, name = self._index(request)
        return OrjsonResponse(run_detail(index, name))

    def samples(self, request: Request) -> Response:
        index, _ = self._index(request)
        params = request.query_params
        query = SampleQuery(q=params.get("q", ""), errors=params.get("errors", ""), score=params.get("score", ""),
                            limited=params.get("limited") in ("1", "true"), sort=params.get("sort", ""),
                            desc=params.get("desc") in ("1", "true"), offset=_int(request, "offset", 0),
                            size=_int(request, "size", 50))
        return OrjsonResponse(sample_page(index, self.catalog.selection(index, query, select), query))

    def sample(self, request: Request) -> Response:
        index, _ = self._index(request)
        position = _int(request, "position", 0)
        if position >= len(index.entries):
            raise HTTPException(404, f"the log has {len(index.entries)} samples; there is no sample {position}")
        return OrjsonResponse(sample_detail(index, position))

    def compare(self, request: Request) -> Response:
        names = request.query_params.getlist("log")
        indexes = [self._named(name) for name in names]
        try:
            check_comparable([log_of(index) for index in indexes])
        except EvalkitError as ex:
            raise HTTPException(400, str(ex)) from None
        return OrjsonResponse(compare_runs(indexes, names, _int(request, "offset", 0), _int(request, "size", 50)))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return OrjsonResponse({"error": error.detail}, status_code=error.status_code)


async def _log_changed(request: Request, error: Exception) -> Response:
    return OrjsonResponse({"error": "the log was rewritten in place while it was read; try again"}, status_code=409)


def create_app(log_dir: Path, *, token: str | None = None, loopback_only: bool = True) -> Starlette:
    """The viewer app over `log_dir`. With `token`, every request must carry it; bound to the
    loopback interface only, requests must name a loopback host (no DNS rebinding)."""
    api = ViewApi(log_dir)

    def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    routes = [
        Route("/", page),
        Route("/api/runs", api.runs),
        Route("/api/run", api.run),
        Route("/api/samples", api.samples),
        Route("/api/sample", api.sample),
        Route("/api/compare", api.compare),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if loopback_only:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS))
    if token:
        middleware.append(Middleware(TokenGate, token=token))
    return Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: _http_error, LogChangedError: _log_changed})

