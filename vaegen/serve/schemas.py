"""The JSON API's requests and responses. Every input is bounded here, so that a request past a bound is
refused with a 422 naming the field before any model work; the bounds are the `MAX_*` constants."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from vaegen.core.config import SAMPLING_TEMPERATURE, SAMPLING_TOP_P
from vaegen.generate.decoding import GREEDY, Strategy

MAX_TEXT_CHARS = 400  # a whole ci is ~80-200 characters
MAX_N = 50  # sentences per request
MAX_TEXTS = 16  # texts per encode/reconstruct request
MAX_POINTS = 64  # map points per decode request
MAX_PATH_POINTS = 20  # points on an interpolation path, both ends included
MAX_RADIUS = 3.0  # three prior standard deviations
MAX_COORDINATE = 1_000.0  # map coordinates (the map spans a few units)
MAX_BEAM = 16
MAX_NAME_CHARS = 64  # a tune's name
MAX_FORM_CHARS = 400

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
Tune = Annotated[str | None, Field(max_length=MAX_NAME_CHARS)]
Form = Annotated[str | None, Field(max_length=MAX_FORM_CHARS)]
Seed = Annotated[int | None, Field(ge=0, le=2**31 - 1)]
Count = Annotated[int, Field(ge=1, le=MAX_N)]
Coordinate = Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
MapSource = Literal["corpus", "prior"]  # the map's sentences: a corpus's, or samples from the prior


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class StrategyChoice(Request):
    """How tokens are chosen: the API's form of the library's decoding `Strategy`, as the CLI's options say it."""

    kind: Literal["sample", "greedy", "beam"] = "sample"
    temperature: Annotated[float, Field(ge=0.01, le=100.0)] = SAMPLING_TEMPERATURE
    top_k: Annotated[int, Field(ge=0, le=10_000)] = 0
    top_p: Annotated[float, Field(ge=0.01, le=1.0)] = SAMPLING_TOP_P
    beam: Annotated[int, Field(ge=1, le=MAX_BEAM)] = 5

    def to_strategy(self) -> Strategy:
        if self.kind == "greedy":
            return GREEDY
        if self.kind == "beam":
            return Strategy(beam=self.beam)
        return Strategy(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)


# Each action's default is the CLI's: sample, near and complete sample; the others are greedy
SAMPLING_DEFAULT = StrategyChoice()
GREEDY_DEFAULT = StrategyChoice(kind="greedy")


class SampleRequest(Request):
    n: Count = 5
    strategy: StrategyChoice = SAMPLING_DEFAULT
    tune: Tune = None
    form: Form = None
    seed: Seed = None


class EncodeRequest(Request):
    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS)
    tune: Tune = None


class ReconstructRequest(EncodeRequest):
    strategy: StrategyChoice = GREEDY_DEFAULT
    form: Form = None
    neighbours: Annotated[int, Field(ge=0, le=20)] = 5


class DecodeRequest(Request):
    """Map points to decode, lifted back to the latent space through the projection."""

    points: list[tuple[Coordinate, Coordinate]] = Field(min_length=1, max_length=MAX_POINTS)
    strategy: StrategyChoice = GREEDY_DEFAULT
    tune: Tune = None
    form: Form = None
    seed: Seed = None


class InterpolateRequest(Request):
    a: Text
    b: Text
    steps: Annotated[int, Field(ge=2, le=MAX_PATH_POINTS)] = 7
    path: Literal["linear", "slerp"] = "linear"
    strategy: StrategyChoice = GREEDY_DEFAULT
    tune: Tune = None
    form: Form = None


class NearRequest(SampleRequest):
    """n variations on a text, from codes around its posterior mean."""

    text: Text
    radius: Annotated[float, Field(gt=0.0, le=MAX_RADIUS)] = 0.5


class CompleteRequest(SampleRequest):
    prefix: Text


class Neighbour(BaseModel):
    text: str
    distance: float  # Euclidean, between posterior means


class Result(BaseModel):
    text: str
    x: float  # where its code falls on the map
    y: float
    logprob: float | None = None
    tune: str | None = None
    form: str | None = None
    reconstruction: str | None = None  # reconstruct: the decoded text (text is the input)
    neighbours: list[Neighbour] | None = None  # reconstruct: the nearest map sentences in z


class Results(BaseModel):
    results: list[Result]


class MapPoint(BaseModel):
    x: float
    y: float
    text: str


class MapView(BaseModel):
    points: list[MapPoint]
    source: MapSource
    explained: list[float]  # the share of the codes' variance along each axis


class FormCount(BaseModel):
    form: str
    count: int
    share: float


class TuneInfo(BaseModel):
    name: str
    count: int
    forms: list[FormCount]


class Tunes(BaseModel):
    tunes: list[TuneInfo]


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    latent_dim: int
    tunes: bool
    map_source: MapSource
    map_points: int
