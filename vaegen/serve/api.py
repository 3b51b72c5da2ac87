"""The JSON API's endpoints (their schema at /openapi.json). Each answers from the application's `Service`; those
that call the model go through its `ModelGate`, in turns with the other requests, given up when their client
goes. Both come from `request.app.state`, as dependencies: `create_app` puts the service there, and the
application's lifespan the gate.

A request the schemas refuse is answered 422 with FastAPI's list of errors, in which an input that JSON cannot
carry (NaN or an infinity, which Python's json module reads and writes) is written as a string: otherwise the
refusal itself would fail to render, as a 500.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from vaegen.serve import schemas as s
from vaegen.serve.gate import ModelGate
from vaegen.serve.service import Service

T = TypeVar("T")


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@dataclass(frozen=True)
class Model:
    """The gate in front of the model, for one request: a call is given up when the request's client goes."""

    gate: ModelGate
    request: Request

    async def run(self, call: Callable[[], T]) -> T:
        return await self.gate.run(call, self.request.is_disconnected)


def get_model(request: Request) -> Model:
    """The gate the lifespan opened; a server run without its lifespan has none, and says so."""
    gate: ModelGate | None = getattr(request.app.state, "gate", None)
    if gate is None:
        raise HTTPException(503, "the model's worker is not running: serve the application with its lifespan on")
    return Model(gate, request)


def json_safe(value: object) -> object:
    """`value` with every float that JSON cannot carry (NaN, ±infinity) written as a string, in lists and dicts."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


class JsonSafeErrors(APIRoute):
    """A route whose validation errors always render: non-finite inputs quoted (`json_safe`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                raise RequestValidationError([json_safe(e) for e in error.errors()],
                                             endpoint_ctx=error.endpoint_ctx) from None

        return handle


ServiceDep = Annotated[Service, Depends(get_service)]
ModelDep = Annotated[Model, Depends(get_model)]

router = APIRouter(prefix="/api", route_class=JsonSafeErrors)


@router.get("/health")
async def health(service: ServiceDep) -> s.Health:
    return service.health()


@router.get("/map")
async def landscape(service: ServiceDep) -> s.MapView:
    return service.map_view()


@router.get("/tunes")
async def tunes(service: ServiceDep) -> s.Tunes:
    return service.tunes()


@router.post("/sample")
async def sample(r: s.SampleRequest, service: ServiceDep, model: ModelDep) -> s.Results:
    return await model.run(lambda: service.sample(r))


@router.post("/encode")
async def encode(r: s.EncodeRequest, service: ServiceDep, model: ModelDep) -> s.Results:
    return await model.run(lambda: service.encode(r))


@router.post("/decode")
async def decode(r: s.DecodeRequest, service: ServiceDep, model: ModelDep) -> s.Results:
    return await model.run(lambda: service.decode(r))


@router.post("/reconstruct")
async def reconstruct(r: s.ReconstructRequest, service: ServiceDep, model: ModelDep) -> s.Results:
    return await model.run(lambda: service.reconstruct(r))


@router.post("/interpolate")
async def interpolate(r: s.InterpolateRequest, service: ServiceDep, model: ModelDep) -> s.Results:
    return await model.run(lambda: service.interpolate(r))


@router.post("/near")
async def near(r: s.NearRequest, service: ServiceDep, model: ModelDep) -> s.Results:
    return await model.run(lambda: service.near(r))


@router.post("/complete")
async def complete(r: s.CompleteRequest, service: ServiceDep, model: ModelDep) -> s.Results:
    return await model.run(lambda: service.complete(r))
