"""What the endpoints answer: the model and its map, with one method per endpoint that mirrors a method of the
Python API (`SentenceGenerator`) and answers the API's schema. Each sentence comes with where its code falls on
the map, so that the page can draw it there. Every call is held to the model's own bounds: it writes at most the
model's `data.max_length` tokens (a longer form, asked for, a tune's or a text's own, is refused before any model
work) and reads at most as many (a longer text is read truncated, a longer prefix refused). `load_service` finds and
loads the model and its map as the settings say, with the notes `vaegen serve` prints on stderr.
"""

from __future__ import annotations

import sys
import time

import torch

from vaegen.core import checkpoint
from vaegen.generate.generator import Generation, SentenceGenerator, load
from vaegen.serve import schemas as s
from vaegen.serve.landscape import ServedMap, served_map
from vaegen.serve.settings import Settings


class Service:
    """The model, its map and the name the page shows; the methods that call the model run behind the gate."""

    def __init__(self, model: SentenceGenerator, landscape: ServedMap, name: str) -> None:
        self.model, self.landscape, self.name = model, landscape, name
        self.max_length = model.config.data.max_length  # what the model was trained to write: every call's bound

    def results(self, generations: list[Generation]) -> s.Results:
        if not generations:
            return s.Results(results=[])
        places = self.landscape.place(torch.tensor([g.z for g in generations]))
        return s.Results(results=[s.Result(text=g.text, x=x, y=y, layout=at, logprob=g.logprob, tune=g.tune,
                                           form=g.form) for g, (x, y, at) in zip(generations, places)])

    # Without the model

    def health(self) -> s.Health:
        return s.Health(status="ok", model=self.name, latent_dim=self.model.latent_dim, max_length=self.max_length,
                        tunes=self.model.labels is not None, map_source=self.landscape.source,
                        map_points=self.landscape.total)

    def map_view(self) -> s.MapView:
        return self.landscape.view()

    def tunes(self) -> s.Tunes:
        known = self.model.labels.known if self.model.labels is not None else []
        return s.Tunes(tunes=[s.TuneInfo(name=t.name, count=t.count, forms=[
            s.FormCount(form=form, count=count, share=count / t.count) for form, count in t.forms]) for t in known])

    # With the model: behind the gate, which gives each call its turns on the model

    def sample(self, r: s.SampleRequest) -> s.Results:
        return self.results(self.model.sample(r.n, r.strategy.to_strategy(), tune=r.tune, form=r.form, seed=r.seed,
                                              max_length=self.max_length))

    def encode(self, r: s.EncodeRequest) -> s.Results:
        places = self.landscape.place(self.model.encode(r.texts, tune=r.tune).mu.float().cpu())
        return s.Results(results=[s.Result(text=t, x=x, y=y, layout=at) for t, (x, y, at) in zip(r.texts, places)])

    def decode(self, r: s.DecodeRequest) -> s.Results:
        z = self.landscape.lift(torch.tensor(r.points))
        return self.results(self.model.decode(z, r.strategy.to_strategy(), tune=r.tune, form=r.form, seed=r.seed,
                                              max_length=self.max_length))

    def reconstruct(self, r: s.ReconstructRequest) -> s.Results:
        """Each text placed at its posterior mean (the code its reconstruction is decoded from), with the
        reconstruction and the map sentences nearest that code."""
        rebuilt = self.model.reconstruct(r.texts, r.strategy.to_strategy(), tune=r.tune, form=r.form,
                                         max_length=self.max_length)
        placed = self.results(rebuilt)
        nearest = self.landscape.nearest(torch.tensor([g.z for g in rebuilt]), r.neighbours)
        for text, result, found in zip(r.texts, placed.results, nearest):
            result.text, result.reconstruction = text, result.text
            result.neighbours = [s.Neighbour(text=t, distance=d) for t, d in found]
        return placed

    def interpolate(self, r: s.InterpolateRequest) -> s.Results:
        return self.results(self.model.interpolate(r.a, r.b, r.steps, r.path, r.strategy.to_strategy(), tune=r.tune,
                                                   form=r.form, max_length=self.max_length))

    def near(self, r: s.NearRequest) -> s.Results:
        return self.results(self.model.near(r.text, r.n, r.radius, r.strategy.to_strategy(), tune=r.tune, form=r.form,
                                            seed=r.seed, max_length=self.max_length))

    def complete(self, r: s.CompleteRequest) -> s.Results:
        return self.results(self.model.complete(r.prefix, r.n, r.strategy.to_strategy(), tune=r.tune, form=r.form,
                                                seed=r.seed, max_length=self.max_length))


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_service(settings: Settings) -> Service:
    """The model the settings name (or the one that ships) with its map: shipped, read from the cache, or to be
    built once the server listens; notes on stderr say which shipped model is used and when the server is ready."""
    started = time.perf_counter()
    location = checkpoint.locate(settings.checkpoint, by_tune=True)
    if (shipped := checkpoint.shipped_note(settings.checkpoint, None, location)) is not None:
        note(shipped)
    model = load(location, settings.device)
    landscape = served_map(model, location, settings, note)
    note(f"ready in {time.perf_counter() - started:.1f} s")
    if settings.url is not None:
        note(settings.url)
    return Service(model, landscape, location.name)
