"""The Python API: a trained model with its tokenizer, answering in text.

    import vaegen
    model = vaegen.load("vaegen.pt")
    model.sample(5)
    model.interpolate("the first sentence", "the second one", steps=7)

Every CLI generation command is a thin wrapper over one of these methods.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vaegen import checkpoint
from vaegen.data import collate, truncate
from vaegen.decoding import DECODE_BATCH, generate
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

    def sample(self, n: int, *, temperature: float = 1.0, greedy: bool = False, seed: int | None = None) -> list[str]:
        """n sentences decoded from z ~ N(0, I)."""
        generator = self._generator(seed)
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        return self.decode(z, greedy=greedy, temperature=temperature, generator=generator)

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

    def decode(self, z: torch.Tensor, *, greedy: bool = True, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> list[str]:
        """Texts for codes z (N, latent_dim): greedy by default, or sampled at `temperature`."""
        ids = generate(self.model, z.to(self.device), self.config.data.max_length, greedy, temperature, generator,
                       self.tokenizer.control_ids)
        return self.tokenizer.decode(ids)

    def interpolate(self, a: str, b: str, steps: int = 7) -> list[str]:
        """Greedy decodings along the straight line between the posterior means of a and b."""
        if not self.latent_dim:
            raise VaegenError("this checkpoint is a language model (latent_dim = 0): it has no latent space to "
                              "interpolate in; use a checkpoint trained with --latent-dim above 0")
        mu = self.encode([a, b]).mu  # (2, L)
        t = torch.linspace(0.0, 1.0, steps, device=self.device).unsqueeze(1)  # (steps, 1)
        return self.decode((1 - t) * mu[0] + t * mu[1])


def load(path: str | Path | None = None, device: str | torch.device | None = None) -> SentenceGenerator:
    """Load a checkpoint (default: $VAEGEN_CHECKPOINT, then ./vaegen.pt) as a ready generator."""
    resolved = device if isinstance(device, torch.device) else resolve_device(device)
    location = checkpoint.locate(Path(path) if path is not None else None)
    return SentenceGenerator(checkpoint.load(location, resolved), resolved)
