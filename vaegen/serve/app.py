"""The FastAPI application of `vaegen serve`: the JSON API (its schema at /openapi.json), the page that uses
only it, and the headers that keep the page to its own origin.

Each endpoint mirrors a method of the Python API (`SentenceGenerator`) and answers `Results`: each sentence
with where its code falls on the map, so that the page can draw it there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from vaegen.errors import VaegenError
from vaegen.generator import Generation, SentenceGenerator
from vaegen.serve import schemas as s
from vaegen.serve.gate import ModelGate
from vaegen.serve.landscape import Landscape

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


class Service:
    """What the endpoints share: the model, its map and the gate in front of them."""

    def __init__(self, model: SentenceGenerator, landscape: Landscape, name: str, gate: ModelGate) -> None:
        self.model, self.landscape, self.name, self.gate = model, landscape, name, gate

    def results(self, generations: list[Generation]) -> s.Results:
        if not generations:
            return s.Results(results=[])
        points = self.landscape.project(torch.tensor([g.z for g in generations])).tolist()
        return s.Results(results=[s.Result(text=g.text, x=x, y=y, logprob=g.logprob, tune=g.tune, form=g.form)
                                  for g, (x, y) in zip(generations, points)])

    def reconstruct(self, request: s.ReconstructRequest) -> s.Results:
        """Each text placed at its posterior mean (the code its reconstruction is decoded from), with the
        reconstruction and the map sentences nearest that code."""
        rebuilt = self.model.reconstruct(request.texts, request.decoding.strategy_(), tune=request.tune,
                                         form=request.form)
        placed = self.results(rebuilt)
        nearest = self.landscape.nearest(torch.tensor([g.z for g in rebuilt]), request.neighbours)
        for text, result, found in zip(request.texts, placed.results, nearest):
            result.text, result.reconstruction = text, result.text
            result.neighbours = [s.Neighbour(text=t, distance=d) for t, d in found]
        return placed

    def decode(self, request: s.DecodeRequest) -> s.Results:
        z = self.landscape.lift(torch.tensor(request.points))
        return self.results(self.model.decode(z, request.decoding.strategy_(), tune=request.tune, form=request.form,
                                              seed=request.seed))


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


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="vaegen", summary="The continuous space of sentences of a sentence VAE",
                  docs_url=None, redoc_url=None)  # the interactive docs load from a CDN: the schema alone is served
    m, gate = service.model, service.gate

    app.middleware("http")(guard)
    app.exception_handler(VaegenError)(user_error)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health() -> s.Health:
        return s.Health(status="ok", model=service.name, latent_dim=m.latent_dim, tunes=m.labels is not None,
                        map_source="corpus" if service.landscape.source == "corpus" else "prior",
                        map_points=len(service.landscape.texts))

    @app.get("/api/map")
    async def landscape() -> s.MapView:
        view = service.landscape
        points = [s.MapPoint(x=x, y=y, text=t) for (x, y), t in zip(view.points().tolist(), view.texts)]
        return s.MapView(points=points, source="corpus" if view.source == "corpus" else "prior",
                         explained=view.explained)

    @app.get("/api/tunes")
    async def tunes() -> s.Tunes:
        known = m.labels.known if m.labels is not None else []
        return s.Tunes(tunes=[s.TuneInfo(name=t.name, count=t.count, forms=[
            s.FormCount(form=form, count=count, share=count / t.count) for form, count in t.forms]) for t in known])

    @app.post("/api/sample")
    async def sample(r: s.SampleRequest) -> s.Results:
        return service.results(await gate.run(lambda: m.sample(r.n, r.decoding.strategy_(), tune=r.tune, form=r.form,
                                                               seed=r.seed)))

    @app.post("/api/encode")
    async def encode(r: s.EncodeRequest) -> s.Results:
        mu = (await gate.run(lambda: m.encode(r.texts, tune=r.tune))).mu.float().cpu()
        points = service.landscape.project(mu).tolist()
        return s.Results(results=[s.Result(text=t, x=x, y=y) for t, (x, y) in zip(r.texts, points)])

    @app.post("/api/decode")
    async def decode(r: s.DecodeRequest) -> s.Results:
        return await gate.run(lambda: service.decode(r))

    @app.post("/api/reconstruct")
    async def reconstruct(r: s.ReconstructRequest) -> s.Results:
        return await gate.run(lambda: service.reconstruct(r))

    @app.post("/api/interpolate")
    async def interpolate(r: s.InterpolateRequest) -> s.Results:
        return service.results(await gate.run(lambda: m.interpolate(r.a, r.b, r.steps, r.path, r.decoding.strategy_(),
                                                                    tune=r.tune, form=r.form)))

    @app.post("/api/near")
    async def near(r: s.NearRequest) -> s.Results:
        return service.results(await gate.run(lambda: m.near(r.text, r.n, r.radius, r.decoding.strategy_(),
                                                             tune=r.tune, form=r.form, seed=r.seed)))

    @app.post("/api/complete")
    async def complete(r: s.CompleteRequest) -> s.Results:
        return service.results(await gate.run(lambda: m.complete(r.prefix, r.n, r.decoding.strategy_(), tune=r.tune,
                                                                 form=r.form, seed=r.seed)))

    return app
