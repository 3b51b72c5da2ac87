"""The Python API: a trained model with its tokenizer, answering in text.

    import vaegen
    from vaegen import Strategy
    model = vaegen.load("vaegen.pt")
    model.sample(5, Strategy(top_p=0.9), seed=0)
    model.reconstruct(["a sentence of my own"])
    model.interpolate("the first sentence", "the second one", steps=7, path="slerp")
    model.complete("the company said", n=3)
    model.near("a sentence of my own", n=5, radius=0.5)

Each returns `Generation`s (text, log-probability, code). Every CLI generation command is a thin
wrapper over one of these methods.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch

from vaegen import checkpoint, latent
from vaegen.data import collate, truncate
from vaegen.decoding import DECODE_BATCH, GREEDY, SAMPLING, Decoded, Strategy, generate, prefix_log_likelihood
from vaegen.errors import VaegenError
from vaegen.model import Posterior


def resolve_device(name: str | None = None) -> torch.device:
    """The device named, checked; by default CUDA when present, else the CPU."""
    if name is None:  # under torchrun each process takes the GPU of its local rank
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VaegenError(f"unknown device {name!r}; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VaegenError(f"device {name!r} asked for but CUDA is not available here; use --device cpu")
    return device


class Generation(NamedTuple):
    text: str
    logprob: float  # log p(text | z) under the decoder, end of sentence included (the prefix too, for completions)
    z: list[float]  # the code it was decoded from

    def __str__(self) -> str:
        return self.text


class SentenceGenerator:
    def __init__(self, loaded: checkpoint.Loaded, device: torch.device) -> None:
        self.config, self.tokenizer, self.model, self.train_state = loaded
        self.device = device

    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    def _generator(self, seed: int | None) -> torch.Generator:
        """A seeded generator, or a freshly (non-deterministically) seeded one when seed is None."""
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return generator

    def _needs_latent(self, what: str) -> None:
        if not self.latent_dim:
            raise VaegenError(f"this checkpoint is a language model (latent_dim = 0): it has no latent space to "
                              f"{what}; use a checkpoint trained with --latent-dim above 0")

    def _prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def encode(self, texts: list[str]) -> Posterior:
        """Posterior q(z|x) of each text, in input order: mu and logvar, each (N, latent_dim)."""
        ids, _ = truncate(self.tokenizer.encode(texts), self.config.data.max_length)
        mus, logvars = [], []
        with torch.no_grad():
            for start in range(0, len(ids), DECODE_BATCH):
                batch = collate(ids[start : start + DECODE_BATCH]).to(self.device)
                mu, logvar = self.model.encode(batch.tokens, batch.lengths)
                mus.append(mu)
                logvars.append(logvar)
        return Posterior(torch.cat(mus), torch.cat(logvars))

    def decode(self, z: torch.Tensor, strategy: Strategy = GREEDY, *, seed: int | None = None,
               max_length: int | None = None, generator: torch.Generator | None = None) -> list[Generation]:
        """Texts for codes z (N, latent_dim), greedy unless `strategy` says otherwise."""
        return self._decode(z, strategy, generator or self._generator(seed), max_length)

    def _generate(self, z: torch.Tensor, strategy: Strategy, generator: torch.Generator, max_length: int | None,
                  prefix_ids: list[int] | None = None) -> Decoded:
        limit = max_length or self.config.data.max_length
        prefix_ids = prefix_ids or []
        if len(prefix_ids) >= limit:
            raise VaegenError(f"the prefix is {len(prefix_ids)} tokens long, leaving no room under the maximum "
                              f"length of {limit}; shorten it or raise --max-length")
        return generate(self.model, z.to(self.device), limit - len(prefix_ids), strategy, generator,
                        self.tokenizer.control_ids, prefix_ids)

    def _decode(self, z: torch.Tensor, strategy: Strategy, generator: torch.Generator,
                max_length: int | None) -> list[Generation]:
        decoded = self._generate(z, strategy, generator, max_length)
        return generations(self.tokenizer.decode(decoded.ids), decoded.logprobs, z)

    def _continue(self, prefix: str, prefix_ids: list[int], ids: list[int]) -> str:
        """The prefix verbatim, then the text that `ids` add after it (its spacing as the tokenizer has it)."""
        head, whole = self.tokenizer.decode([prefix_ids, prefix_ids + ids])
        rest = whole[len(head):] if whole.startswith(head) else self.tokenizer.decode([ids])[0]
        return prefix + (rest.lstrip() if prefix[-1:].isspace() else rest)

    def sample(self, n: int, strategy: Strategy = SAMPLING, *, seed: int | None = None,
               max_length: int | None = None) -> list[Generation]:
        """n sentences decoded from z ~ N(0, I), sampled at temperature 1 unless `strategy` says otherwise."""
        generator = self._generator(seed)
        return self._decode(self._prior(n, generator), strategy, generator, max_length)

    def near(self, text: str, n: int, radius: float = 0.5, strategy: Strategy = SAMPLING, *,
             seed: int | None = None, max_length: int | None = None) -> list[Generation]:
        """n variations on `text`: codes drawn from N(mu, radius^2 I) around its posterior mean."""
        self._needs_latent("sample near a sentence in")
        generator = self._generator(seed)
        z = self.encode([text]).mu + radius * self._prior(n, generator)
        return self._decode(z, strategy, generator, max_length)

    def reconstruct(self, texts: list[str], strategy: Strategy = GREEDY, *, sample_z: bool = False,
                    seed: int | None = None, max_length: int | None = None) -> list[Generation]:
        """Encode each text and decode it again: from its posterior mean, or a draw of q(z|x) with sample_z."""
        self._needs_latent("reconstruct from")
        generator = self._generator(seed)
        mu, logvar = self.encode(texts)
        z = mu + (0.5 * logvar).exp() * self._prior(len(texts), generator) if sample_z else mu
        return self._decode(z, strategy, generator, max_length)

    def interpolate(self, a: str | None = None, b: str | None = None, steps: int = 7, path: str = "linear",
                    strategy: Strategy = GREEDY, *, unique: bool = False, seed: int | None = None,
                    max_length: int | None = None) -> list[Generation]:
        """Decodings at `steps` points from a's code to b's (posterior means; an endpoint left None is drawn
        from the prior), along a straight line or a great circle (`path="slerp"`). `unique` drops a
        decoding equal to the one before it."""
        self._needs_latent("interpolate in")
        generator = self._generator(seed)
        start, end = (self.encode([text]).mu[0] if text is not None else self._prior(1, generator)[0] for text in (a, b))
        results = self._decode(latent.path(start, end, steps, path), strategy, generator, max_length)
        if unique:
            results = [g for i, g in enumerate(results) if i == 0 or g.text != results[i - 1].text]
        return results

    def complete(self, prefix: str, n: int = 5, strategy: Strategy = SAMPLING, *, candidates: int = 256,
                 seed: int | None = None, max_length: int | None = None) -> list[Generation]:
        """n sentences that begin with `prefix` verbatim. Codes are drawn from the prior, weighted by how
        likely the decoder finds the prefix under each, resampled by those weights, and the continuation
        is decoded from the chosen codes; the most prefix-likely codes come first."""
        if not prefix.strip():
            raise VaegenError("the prefix is empty; give the beginning of a sentence, or use `vaegen sample`")
        generator = self._generator(seed)
        pool = self._prior(candidates, generator)
        prefix_ids = self.tokenizer.encode([prefix])[0]
        likelihoods = prefix_log_likelihood(self.model, pool, prefix_ids)
        chosen = latent.resample_by_likelihood(likelihoods, n, generator)
        decoded = self._generate(pool[chosen], strategy, generator, max_length, prefix_ids)
        texts = [self._continue(prefix, prefix_ids, ids) for ids in decoded.ids]
        return generations(texts, decoded.logprobs + likelihoods[chosen].cpu(), pool[chosen])


def generations(texts: list[str], logprobs: torch.Tensor, z: torch.Tensor) -> list[Generation]:
    return [Generation(text, logprob, code) for text, logprob, code in zip(texts, logprobs.tolist(), z.tolist())]


def load(path: str | Path | None = None, device: str | torch.device | None = None) -> SentenceGenerator:
    """Load a checkpoint (default: $VAEGEN_CHECKPOINT, then ./vaegen.pt, then the model that ships with
    vaegen) as a ready generator."""
    resolved = device if isinstance(device, torch.device) else resolve_device(device)
    location = checkpoint.locate(Path(path) if path is not None else None)
    return SentenceGenerator(checkpoint.load(location, resolved), resolved)
