"""The JSON API's requests and responses. Every input is bounded here, so that a request past a bound is
refused with a 422 naming the field before any model work; the bounds are the `MAX_*` constants. A number must
be finite (NaN and the infinities, which Python's json module reads, are refused), and a beam search carries at
most `MAX_HYPOTHESES` at each step (its width times the sentences asked), so that no request costs far more than
the largest sampling one. The bounds that belong to a model (a form no longer than its `data.max_length`) are
its own, and the service holds each call to them."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
MAX_HYPOTHESES = 64  # a beam search's width times its sentences: what each of its steps carries
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
    # a misspelt field is an error, not silently ignored; NaN and the infinities are no numbers to decode
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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


class Decoding(Request):
    """A request that decodes `decodings()` sentences: by beam search, at most MAX_HYPOTHESES at once."""

    strategy: StrategyChoice = GREEDY_DEFAULT

    def decodings(self) -> int:
        raise NotImplementedError

    @model_validator(mode="after")
    def within_the_beam_budget(self) -> Self:
        if self.strategy.kind == "beam" and self.strategy.beam * self.decodings() > MAX_HYPOTHESES:
            raise ValueError(f"strategy.beam {self.strategy.beam} × {self.decodings()} sentences is over "
                             f"{MAX_HYPOTHESES} hypotheses at once; narrow the beam or ask for fewer sentences")
        return self


class SampleRequest(Decoding):
    n: Count = 5
    strategy: StrategyChoice = SAMPLING_DEFAULT
    tune: Tune = None
    form: Form = None
    seed: Seed = None

    def decodings(self) -> int:
        return self.n


class EncodeRequest(Request):
    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS)
    tune: Tune = None


class ReconstructRequest(EncodeRequest, Decoding):
    strategy: StrategyChoice = GREEDY_DEFAULT
    form: Form = None
    neighbours: Annotated[int, Field(ge=0, le=20)] = 5

    def decodings(self) -> int:
        return len(self.texts)


class DecodeRequest(Decoding):
    """Map points to decode, lifted back to the latent space through the projection."""

    points: list[tuple[Coordinate, Coordinate]] = Field(min_length=1, max_length=MAX_POINTS)
    strategy: StrategyChoice = GREEDY_DEFAULT
    tune: Tune = None
    form: Form = None
    seed: Seed = None

    def decodings(self) -> int:
        return len(self.points)


class InterpolateRequest(Decoding):
    a: Text
    b: Text
    steps: Annotated[int, Field(ge=2, le=MAX_PATH_POINTS)] = 7
    path: Literal["linear", "slerp"] = "linear"
    strategy: StrategyChoice = GREEDY_DEFAULT
    tune: Tune = None
    form: Form = None

    def decodings(self) -> int:
        return self.steps


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
    x: float | None  # where its code falls on the map's principal axes; None while the map is being built
    y: float | None
    layout: tuple[float, float] | None = None  # where it falls on the neighbour layout, among its nearest map sentences
    logprob: float | None = None
    tune: str | None = None
    form: str | None = None
    reconstruction: str | None = None  # reconstruct: the decoded text (text is the input)
    neighbours: list[Neighbour] | None = None  # reconstruct: the nearest map sentences in z


class Results(BaseModel):
    results: list[Result]


class MapPoint(BaseModel):
    x: float  # on the principal axes
    y: float
    layout: tuple[float, float]  # on the neighbour layout
    text: str
    tune: str | None = None


class Kept(BaseModel):
    """Of each map sentence's 10 nearest in z, the share that are among its 10 nearest on each layout."""

    neighbours: float
    axes: float


class MapView(BaseModel):
    """The map once it is ready; while it is being built, how far the build has come."""

    status: Literal["building", "ready", "failed"]
    stage: str = ""  # while building: encoding, decoding, laying out
    done: int = 0  # sentences encoded or decoded so far
    total: int  # sentences on the map
    source: MapSource
    points: list[MapPoint] = []
    explained: list[float] = []  # the share of the codes' variance along each principal axis
    kept: Kept | None = None
    error: str | None = None  # failed: why


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
    max_length: int  # the most tokens a sentence may have, and so the most steps a form: the model's data.max_length
    tunes: bool
    map_source: MapSource
    map_points: int
