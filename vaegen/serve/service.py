"""What the endpoints answer: the model and its map, with one method per endpoint that mirrors a method of the
Python API (`SentenceGenerator`) and answers the API's schema. Each sentence comes with where its code falls on
the map, so that the page can draw it there. `load_service` finds and loads the model and its map as the
settings say, with the notes `vaegen serve` prints on stderr.
"""

from __future__ import annotations

import sys
import time

import torch

from vaegen.core import checkpoint
from vaegen.generate.generator import Generation, SentenceGenerator, load
from vaegen.serve import schemas as s
from vaegen.serve.landscape import Landscape, cached_map
from vaegen.serve.settings import Settings


class Service:
    """The model, its map and the name the page shows; the methods that call the model run behind the gate."""

    def __init__(self, model: SentenceGenerator, landscape: Landscape, name: str) -> None:
        self.model, self.landscape, self.name = model, landscape, name

    def results(self, generations: list[Generation]) -> s.Results:
        if not generations:
            return s.Results(results=[])
        points = self.landscape.project(torch.tensor([g.z for g in generations])).tolist()
        return s.Results(results=[s.Result(text=g.text, x=x, y=y, logprob=g.logprob, tune=g.tune, form=g.form)
                                  for g, (x, y) in zip(generations, points)])

    # Without the model

    def health(self) -> s.Health:
        return s.Health(status="ok", model=self.name, latent_dim=self.model.latent_dim,
                        tunes=self.model.labels is not None, map_source=self._source(),
                        map_points=len(self.landscape.texts))

    def map_view(self) -> s.MapView:
        view = self.landscape
        points = [s.MapPoint(x=x, y=y, text=t) for (x, y), t in zip(view.points().tolist(), view.texts)]
        return s.MapView(points=points, source=self._source(), explained=view.explained)

    def tunes(self) -> s.Tunes:
        known = self.model.labels.known if self.model.labels is not None else []
        return s.Tunes(tunes=[s.TuneInfo(name=t.name, count=t.count, forms=[
            s.FormCount(form=form, count=count, share=count / t.count) for form, count in t.forms]) for t in known])

    def _source(self) -> s.MapSource:
        return "corpus" if self.landscape.source == "corpus" else "prior"

    # With the model: one call at a time, behind the gate

    def sample(self, r: s.SampleRequest) -> s.Results:
        return self.results(self.model.sample(r.n, r.strategy.to_strategy(), tune=r.tune, form=r.form, seed=r.seed))

    def encode(self, r: s.EncodeRequest) -> s.Results:
        points = self.landscape.project(self.model.encode(r.texts, tune=r.tune).mu.float().cpu()).tolist()
        return s.Results(results=[s.Result(text=t, x=x, y=y) for t, (x, y) in zip(r.texts, points)])

    def decode(self, r: s.DecodeRequest) -> s.Results:
        z = self.landscape.lift(torch.tensor(r.points))
        return self.results(self.model.decode(z, r.strategy.to_strategy(), tune=r.tune, form=r.form, seed=r.seed))

    def reconstruct(self, r: s.ReconstructRequest) -> s.Results:
        """Each text placed at its posterior mean (the code its reconstruction is decoded from), with the
        reconstruction and the map sentences nearest that code."""
        rebuilt = self.model.reconstruct(r.texts, r.strategy.to_strategy(), tune=r.tune, form=r.form)
        placed = self.results(rebuilt)
        nearest = self.landscape.nearest(torch.tensor([g.z for g in rebuilt]), r.neighbours)
        for text, result, found in zip(r.texts, placed.results, nearest):
            result.text, result.reconstruction = text, result.text
            result.neighbours = [s.Neighbour(text=t, distance=d) for t, d in found]
        return placed

    def interpolate(self, r: s.InterpolateRequest) -> s.Results:
        return self.results(self.model.interpolate(r.a, r.b, r.steps, r.path, r.strategy.to_strategy(), tune=r.tune,
                                                   form=r.form))

    def near(self, r: s.NearRequest) -> s.Results:
        return self.results(self.model.near(r.text, r.n, r.radius, r.strategy.to_strategy(), tune=r.tune, form=r.form,
                                            seed=r.seed))

    def complete(self, r: s.CompleteRequest) -> s.Results:
        return self.results(self.model.complete(r.prefix, r.n, r.strategy.to_strategy(), tune=r.tune, form=r.form,
                                                seed=r.seed))


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_service(settings: Settings) -> Service:
    """The model the settings name (or the one that ships) with its map, read from the cache or built and
    cached; notes on stderr say which shipped model is used and when the server is ready."""
    started = time.perf_counter()
    location = checkpoint.locate(settings.checkpoint, by_tune=True)
    if (shipped := checkpoint.shipped_note(settings.checkpoint, location)) is not None:
        note(shipped)
    model = load(location, settings.device)
    landscape, was_cached = cached_map(model, location, settings.map_corpus, settings.map_points)
    note(f"map of {len(landscape.texts):,} {landscape.source} sentences "
         f"{'read from the cache' if was_cached else 'computed and cached'}; ready in "
         f"{time.perf_counter() - started:.1f} s")
    if settings.url is not None:
        note(settings.url)
    return Service(model, landscape, location.name)
