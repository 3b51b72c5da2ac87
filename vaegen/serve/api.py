"""The JSON API's endpoints (their schema at /openapi.json). Each answers from the application's `Service`; those
that call the model go through its `ModelGate`, one call at a time. Both come from `request.app.state`, as
dependencies: `create_app` puts the service there, and the application's lifespan the gate.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from vaegen.serve import schemas as s
from vaegen.serve.gate import ModelGate
from vaegen.serve.service import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def get_gate(request: Request) -> ModelGate:
    """The gate the lifespan opened; a server run without its lifespan has none, and says so."""
    gate: ModelGate | None = getattr(request.app.state, "gate", None)
    if gate is None:
        raise HTTPException(503, "the model's worker is not running: serve the application with its lifespan on")
    return gate


ServiceDep = Annotated[Service, Depends(get_service)]
GateDep = Annotated[ModelGate, Depends(get_gate)]

router = APIRouter(prefix="/api")


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
async def sample(r: s.SampleRequest, service: ServiceDep, gate: GateDep) -> s.Results:
    return await gate.run(lambda: service.sample(r))


@router.post("/encode")
async def encode(r: s.EncodeRequest, service: ServiceDep, gate: GateDep) -> s.Results:
    return await gate.run(lambda: service.encode(r))


@router.post("/decode")
async def decode(r: s.DecodeRequest, service: ServiceDep, gate: GateDep) -> s.Results:
    return await gate.run(lambda: service.decode(r))


@router.post("/reconstruct")
async def reconstruct(r: s.ReconstructRequest, service: ServiceDep, gate: GateDep) -> s.Results:
    return await gate.run(lambda: service.reconstruct(r))


@router.post("/interpolate")
async def interpolate(r: s.InterpolateRequest, service: ServiceDep, gate: GateDep) -> s.Results:
    return await gate.run(lambda: service.interpolate(r))


@router.post("/near")
async def near(r: s.NearRequest, service: ServiceDep, gate: GateDep) -> s.Results:
    return await gate.run(lambda: service.near(r))


@router.post("/complete")
async def complete(r: s.CompleteRequest, service: ServiceDep, gate: GateDep) -> s.Results:
    return await gate.run(lambda: service.complete(r))
