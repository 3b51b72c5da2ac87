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
wrapper over one of these methods. A conditional model (one trained on labelled lines, e.g. whole
Song ci by tune) takes the tune too: `model.sample(3, tune="浣溪沙")`; what it writes then follows a
form of the tune (`songci.form_mask`), the one asked by `form` (its rank among the tune's forms, 1 the
most common, or a form written out: `form=2`, `form="7。7。7。7，7。7。"`) or else, for `sample`, one
drawn by how often the tune used each; for `reconstruct` and `near`, the text's own; for the others,
the most common. Sampling without a tune draws the tunes by their frequency in training; the other
methods need one. What a tune means for generation (its label id, its forms, the held form a decoding keeps
to) is `songci.tune_book.TuneBook`'s to answer; what the decoder reads is built here by `_code` alone, and
`_generate` hands it and the held form to `decoding`. A decoding writes at most `max_length` tokens (default the
model's `data.max_length`), or as many as its form has steps; given `max_length`, a longer form is refused before
any model work (the server gives every call its model's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from vaegen.core import checkpoint
from vaegen.core.data import collate, truncate
from vaegen.core.devices import resolve_device
from vaegen.core.errors import VaegenError
from vaegen.core.model import Posterior
from vaegen.generate import latent
from vaegen.generate.decoding import DECODE_BATCH, GREEDY, SAMPLING, Decoded, Strategy, generate, prefix_log_likelihood
from vaegen.songci import forms as form_text
from vaegen.songci.clause_grammar import ClauseGrammar
from vaegen.songci.tune_book import FormChoice, FormDefault, TuneBook, TuneNames


class Generation(NamedTuple):
    text: str
    logprob: float  # log p(text | z) under the decoder, end of sentence included (the prefix too, for completions)
    z: list[float]  # the code it was decoded from
    tune: str | None = None  # the tune (label) it was written to, for a conditional model
    form: str | None = None  # the form it was held to, for a conditional model

    def __str__(self) -> str:
        return self.text


class SentenceGenerator:
    def __init__(self, loaded: checkpoint.Loaded, device: torch.device) -> None:
        self.config, self.tokenizer, self.model, _, self.labels = loaded
        self.device = device
        self._tunes = TuneBook(self.labels, self.tokenizer, device, form_aware=self.config.model.form_dim > 0)
        self._grammar = ClauseGrammar.of(self.tokenizer)  # None for a model that writes no clause marks

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

    def encode(self, texts: list[str], tune: TuneNames = None) -> Posterior:
        """Posterior q(z|x) of each text (given its tune, for a conditional model), in input order: mu and
        logvar, each (N, latent_dim)."""
        ids, _ = truncate(self.tokenizer.encode(texts), self.config.data.max_length)
        labels = self._tunes.ids(tune, len(texts))
        mus, logvars = [], []
        with torch.no_grad():
            for start in range(0, len(ids), DECODE_BATCH):
                chunk = slice(start, start + DECODE_BATCH)
                batch = collate(ids[chunk], None if labels is None else labels[chunk]).to(self.device)
                mu, logvar = self.model.encode(batch.tokens, batch.lengths, batch.labels)
                mus.append(mu)
                logvars.append(logvar)
        return Posterior(torch.cat(mus), torch.cat(logvars))

    def decode(self, z: torch.Tensor, strategy: Strategy = GREEDY, *, tune: TuneNames = None, form: FormChoice = None,
               seed: int | None = None, max_length: int | None = None,
               generator: torch.Generator | None = None) -> list[Generation]:
        """Texts for codes z (N, latent_dim), greedy unless `strategy` says otherwise."""
        generator = generator or self._generator(seed)
        labels = self._tunes.ids(tune, len(z))
        forms = self._forms(labels, tune, form, "common", generator, max_length)
        return self._decode(z, strategy, generator, max_length, labels, forms)

    def _code(self, z: torch.Tensor, label: int | None) -> torch.Tensor:
        """What the decoder reads for codes z (N, L) all under one label (or none): (N, L + C), on the model's
        device."""
        labels = None if label is None else torch.full((len(z),), label, device=self.device)
        return self.model.code(z.to(self.device), labels)

    def _generate(self, code: torch.Tensor, strategy: Strategy, generator: torch.Generator, max_length: int | None,
                  prefix_ids: list[int] | None = None, form: str = "") -> Decoded:
        """Decode codes (`_code`), held to `form` ("" for none) from where the prefix ends."""
        limit = max_length or self.config.data.max_length
        prefix_ids = prefix_ids or []
        held = self._tunes.hold(form, strategy.rhyme, prefix_ids)
        grammar = self._grammar if held is None and strategy.grammar else None  # a form holds to more
        return generate(self.model, code, limit - len(prefix_ids), strategy, generator,
                        self.tokenizer.control_ids, prefix_ids, held, grammar)

    def _forms(self, labels: list[int] | None, tune: TuneNames, form: FormChoice, default: FormDefault,
               generator: torch.Generator, max_length: int | None, texts: Sequence[str] = ()) -> list[str] | None:
        """`TuneBook.forms`, each refused when longer than `max_length` (if given): a decoding in a form takes one step
        per character or mark of it, however many that is. A form asked for is measured before it is spelt out."""
        if max_length is not None and isinstance(form, str):
            _check_form_length(form, max_length, "form")
        forms = self._tunes.forms(labels, tune, form, default, generator, texts)
        if max_length is not None:
            for each in dict.fromkeys(forms or ()):
                _check_form_length(each, max_length, "the text's own form" if default == "own" else "the tune's form")
        return forms

    def _check_prefix(self, prefix_ids: list[int], form: str, max_length: int | None) -> None:
        """Refuse a prefix that leaves no room to write, before any model work: past the form it is written in, or
        at the maximum length."""
        if form:
            self._tunes.hold(form, False, prefix_ids)  # refuses a prefix that does not fit the form
        elif len(prefix_ids) >= (limit := max_length or self.config.data.max_length):
            raise VaegenError(f"the prefix is {len(prefix_ids)} tokens long, leaving no room under the maximum "
                              f"length of {limit}; shorten it or raise --max-length")

    def _decode(self, z: torch.Tensor, strategy: Strategy, generator: torch.Generator, max_length: int | None,
                labels: list[int] | None, forms: list[str] | None) -> list[Generation]:
        """Decode each code under its label and form, one batch per pair."""
        if labels is None or forms is None:
            decoded = self._generate(self._code(z, None), strategy, generator, max_length)
            return generations(self.tokenizer.decode(decoded.ids), decoded.logprobs, z)
        texts, logprobs = [""] * len(z), torch.zeros(len(z))
        groups: dict[tuple[int, str], list[int]] = {}
        for row, pair in enumerate(zip(labels, forms)):
            groups.setdefault(pair, []).append(row)
        for (label, form), rows in groups.items():
            decoded = self._generate(self._code(z[rows], label), strategy, generator, max_length, form=form)
            for row, text, logprob in zip(rows, self.tokenizer.decode(decoded.ids), decoded.logprobs):
                texts[row], logprobs[row] = text, logprob
        return generations(texts, logprobs, z, [self._tunes.name(label) for label in labels], forms)

    def _continue(self, prefix: str, prefix_ids: list[int], ids: list[int]) -> str:
        """The prefix verbatim, then the text that `ids` add after it (its spacing as the tokenizer has it)."""
        head, whole = self.tokenizer.decode([prefix_ids, prefix_ids + ids])
        rest = whole[len(head):] if whole.startswith(head) else self.tokenizer.decode([ids])[0]
        return prefix + (rest.lstrip() if prefix[-1:].isspace() else rest)

    def sample(self, n: int, strategy: Strategy = SAMPLING, *, tune: str | None = None, form: FormChoice = None,
               seed: int | None = None, max_length: int | None = None) -> list[Generation]:
        """n sentences decoded from z ~ N(0, I), sampled at temperature 1 unless `strategy` says otherwise;
        for a conditional model written to `tune`, or to tunes drawn by their frequency, each in `form` or
        in a form drawn by how often its tune used each."""
        generator = self._generator(seed)
        z = self._prior(n, generator)
        labels = self._tunes.draw(n, generator) if tune is None else self._tunes.ids(tune, n)
        forms = self._forms(labels, tune, form, "drawn", generator, max_length)
        return self._decode(z, strategy, generator, max_length, labels, forms)

    def near(self, text: str, n: int, radius: float = 0.5, strategy: Strategy = SAMPLING, *,
             tune: str | None = None, form: FormChoice = None, seed: int | None = None,
             max_length: int | None = None) -> list[Generation]:
        """n variations on `text`: codes drawn from N(mu, radius^2 I) around its posterior mean; for a
        conditional model in `form`, or in the text's own."""
        self._needs_latent("sample near a sentence in")
        generator = self._generator(seed)
        labels = self._tunes.ids(tune, n)
        forms = self._forms(labels, tune, form, "own", generator, max_length, [text] * n)
        z = self.encode([text], tune).mu + radius * self._prior(n, generator)
        return self._decode(z, strategy, generator, max_length, labels, forms)

    def reconstruct(self, texts: list[str], strategy: Strategy = GREEDY, *, tune: TuneNames = None,
                    form: FormChoice = None, sample_z: bool = False, seed: int | None = None,
                    max_length: int | None = None) -> list[Generation]:
        """Encode each text and decode it again: from its posterior mean, or a draw of q(z|x) with sample_z;
        for a conditional model in `form`, or in each text's own."""
        self._needs_latent("reconstruct from")
        generator = self._generator(seed)
        labels = self._tunes.ids(tune, len(texts))
        forms = self._forms(labels, tune, form, "own", generator, max_length, texts)
        mu, logvar = self.encode(texts, tune)
        z = mu + (0.5 * logvar).exp() * self._prior(len(texts), generator) if sample_z else mu
        return self._decode(z, strategy, generator, max_length, labels, forms)

    def interpolate(self, a: str | None = None, b: str | None = None, steps: int = 7, path: str = "linear",
                    strategy: Strategy = GREEDY, *, tune: str | None = None, form: FormChoice = None,
                    unique: bool = False, seed: int | None = None, max_length: int | None = None) -> list[Generation]:
        """Decodings at `steps` points from a's code to b's (posterior means; an endpoint left None is drawn
        from the prior), along a straight line or a great circle (`path="slerp"`); for a conditional model
        both ends and the whole path belong to one tune. `unique` drops a decoding equal to the one before it."""
        self._needs_latent("interpolate in")
        generator = self._generator(seed)
        labels = self._tunes.ids(tune, steps)
        forms = self._forms(labels, tune, form, "common", generator, max_length)
        start, end = (self.encode([text], tune).mu[0] if text is not None else self._prior(1, generator)[0]
                      for text in (a, b))
        results = self._decode(latent.path(start, end, steps, path), strategy, generator, max_length, labels, forms)
        if unique:
            results = [g for i, g in enumerate(results) if i == 0 or g.text != results[i - 1].text]
        return results

    def complete(self, prefix: str, n: int = 5, strategy: Strategy = SAMPLING, *, tune: str | None = None,
                 form: FormChoice = None, candidates: int = 256, seed: int | None = None,
                 max_length: int | None = None) -> list[Generation]:
        """n sentences that begin with `prefix` verbatim. Codes are drawn from the prior, weighted by how
        likely the decoder finds the prefix under each, resampled by those weights, and the continuation
        is decoded from the chosen codes; the most prefix-likely codes come first. For a conditional model
        the whole ci, prefix included, follows `form` or the tune's most common."""
        if not prefix.strip():
            raise VaegenError("the prefix is empty; give the beginning of a sentence, or use `vaegen sample`")
        generator = self._generator(seed)
        labels = self._tunes.ids(tune, 1)
        label = labels[0] if labels is not None else None
        forms = self._forms(labels, tune, form, "common", generator, max_length)
        written = forms[0] if forms is not None else ""
        pool = self._prior(candidates, generator)
        prefix_ids = self.tokenizer.encode([prefix])[0]
        self._check_prefix(prefix_ids, written, max_length)
        codes = self._code(pool, label)
        held = self._tunes.hold(written, False)  # where the prefix stands in the form
        likelihoods = prefix_log_likelihood(self.model, codes, prefix_ids, held)
        chosen = latent.resample_by_likelihood(likelihoods, n, generator)
        decoded = self._generate(codes[chosen], strategy, generator, max_length, prefix_ids, written)
        texts = [self._continue(prefix, prefix_ids, ids) for ids in decoded.ids]
        tunes = None if label is None else [self._tunes.name(label)] * n
        return generations(texts, decoded.logprobs + likelihoods[chosen].cpu(), pool[chosen], tunes,
                           None if forms is None else forms[:1] * n)


def _check_form_length(form: str, max_length: int, what: str) -> None:
    """Refuse a form of more than `max_length` steps."""
    steps = form_text.length(form)
    if steps > max_length:
        shown = form if len(form) <= 24 else form[:24] + "…"
        raise VaegenError(f"{what} {shown} is {steps:,} characters and marks long, over the maximum length of "
                          f"{max_length} tokens; choose a shorter form")


def generations(texts: list[str], logprobs: torch.Tensor, z: torch.Tensor, tunes: list[str] | None = None,
                forms: list[str] | None = None) -> list[Generation]:
    """`Generation`s, each with its tune and form where given ("" for no form reads as None)."""
    names: list[str | None] = list(tunes) if tunes is not None else [None] * len(texts)
    written: list[str | None] = [form or None for form in forms] if forms is not None else [None] * len(texts)
    return [Generation(text, logprob, code, tune, form)
            for text, logprob, code, tune, form in zip(texts, logprobs.tolist(), z.tolist(), names, written)]


def load(path: str | Path | None = None, device: str | torch.device | None = None, *,
         by_tune: bool = False, model: str | None = None) -> SentenceGenerator:
    """Load a checkpoint, or a model that ships with vaegen by name (`model`, e.g. "en"), as a ready generator.
    Default: $VAEGEN_CHECKPOINT, then ./vaegen.pt, then the Song ci model that ships: lines, or with
    `by_tune` whole ci by tune."""
    resolved = device if isinstance(device, torch.device) else resolve_device(device)
    location = checkpoint.locate(Path(path) if path is not None else None, by_tune, model)
    return SentenceGenerator(checkpoint.load(location, resolved), resolved)
