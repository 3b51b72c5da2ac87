"""The FastAPI application of `vaegen serve`: the JSON API (`api`, its schema at /openapi.json), the page that
uses only it, and the headers that keep the page to its own origin.

`vaegen serve` runs it as uvicorn documents for an application factory:
`uvicorn.run("vaegen.serve.app:create_app", factory=True)`; the factory reads its settings from the environment
(`settings`), loads the model (seconds: a bad checkpoint fails the start) and finds its map, and returns the
application. Its lifespan opens the gate in front of the model and starts building the map where none was ready
(in the background: the page shows its progress) on startup; on shutdown it closes the gate and stops the build.

uvicorn holds Ctrl-C and SIGTERM from before it calls the factory, so as to shut down gracefully once serving; the
factory takes them back while it loads, so that they stop a slow load at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from vaegen.core.errors import Interrupted, VaegenError
from vaegen.serve.api import router
from vaegen.serve.gate import ModelGate
from vaegen.serve.service import Service, load_service
from vaegen.serve.settings import Settings

MAX_BODY_BYTES = 64 * 1024
STATIC = Path(str(files("vaegen.serve") / "static"))
HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Refuse a body without a length or over MAX_BODY_BYTES before reading it; add the security headers."""
    length = request.headers.get("content-length")
    if request.method == "POST" and (length is None or not length.isdigit()):
        response: Response = JSONResponse({"detail": "send the request body with a Content-Length"}, 411)
    elif length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        response = JSONResponse({"detail": f"the request body is over {MAX_BODY_BYTES:,} bytes"}, 413)
    else:
        response = await call_next(request)
    response.headers.update(HEADERS)
    return response


async def user_error(_: Request, error: Exception) -> JSONResponse:
    """A user error from the library (an unknown tune, a bad form) as a 400 with its one-line message."""
    return JSONResponse({"detail": str(error)}, 400)


@contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C (as `Interrupted`) and SIGTERM stop the block at once, whatever handlers were there before."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    held = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
            signal.SIGTERM: signal.signal(signal.SIGTERM, signal.SIG_DFL)}
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("interrupted") from None
    finally:
        for number, handler in held.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(number, handler)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The gate in front of the model, open while the application serves, and the map's build, running until it
    is done; both closed on shutdown."""
    landscape = app.state.service.landscape
    with ModelGate() as gate:
        app.state.gate = gate
        landscape.start()
        try:
            yield
        finally:
            landscape.stop()


async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


def create_app(service: Service | None = None) -> FastAPI:
    """The application serving `service`; without one (as uvicorn calls it), the model that the environment's
    settings name, loaded now so that a bad checkpoint fails the start with its one-line error, with its map (or
    the map's build, which the lifespan starts)."""
    app = FastAPI(title="vaegen", summary="The continuous space of sentences of a sentence VAE", lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # the interactive docs load from a CDN: the schema alone is served
    if service is None:
        with interruptible():
            service = load_service(Settings.from_environment())
    app.state.service = service
    app.middleware("http")(guard)
    app.exception_handler(VaegenError)(user_error)
    app.include_router(router)
    app.get("/", include_in_schema=False)(page)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
