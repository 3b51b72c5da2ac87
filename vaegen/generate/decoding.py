"""Turning latent codes into token ids: greedy, sampled (temperature, top-k, top-p) or beam search.

One `Strategy` describes how each token is chosen, and every generation command shares it. Codes are
decoded in batches; a sentence leaves the batch as soon as it ends, so that a few long sentences do not
keep thousands of finished ones in every step's softmax. The decoder never emits <pad>, <s> or <unk>,
which are structural or carry no text, nor the ids in `banned` (the tokenizer's control-character bytes).
A decoding may start after a given prefix of tokens (sentence completion); the prefix is then part of
what the decoder has read, not of what is returned. It may also be held to a form (`songci.form_mask.HeldForm`,
which `songci.tune_book.TuneBook.hold` builds): per-step masks of allowed tokens, which fix its length and its
punctuation, optionally rhymes, steps whose token must rhyme with the token chosen at an earlier step, and the
form ids a form-aware decoder reads at each step; or, without a form, to a grammar of well-formed clauses
(`songci.clause_grammar`).

The codes decoded here are what the decoder reads (`SentenceVAE.code`): z, followed by the label's
embedding for a conditional model.

Log-probabilities are those of the model itself, log p(tokens | z) at temperature 1 with nothing masked,
the end of sentence included, whatever strategy chose the tokens.

A decoding runs the hook of `between_steps` (when one is set) before each step, and before each chunk of a
prefix it reads: the one place where whoever runs it (the server's gate) may hand the model to other work for a
while, or stop a decoding it gave up on by raising from the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple

import torch

from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from vaegen.songci.clause_grammar import ClauseGrammar
from vaegen.songci.form_mask import HeldForm

DECODE_BATCH = 1024  # codes decoded at once: bounds memory for large --n
READ_CHUNK = 32  # prefix tokens read in one pass, a step (between two, a gate may pause or stop a call)

_hook: ContextVar[Callable[[], None] | None] = ContextVar("between_steps", default=None)


@contextmanager
def between_steps(hook: Callable[[], None]) -> Iterator[None]:
    """Run `hook` before every step of the decodings this thread runs in the block; what it raises stops the
    decoding and leaves the block."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)


def _between_steps() -> None:
    hook = _hook.get()
    if hook is not None:
        hook()


@dataclass(frozen=True)
class Strategy:
    """How the next token is chosen. Sampling is the default; `greedy` takes the most likely token and
    `beam` >= 1 runs beam search of that width (width 1 is greedy), both deterministic."""

    greedy: bool = False
    temperature: float = 1.0  # divides the logits before sampling: below 1 safer, above 1 more varied
    top_k: int = 0  # sample among the k most likely tokens only; 0 = all
    top_p: float = 1.0  # sample among the smallest set of tokens whose probability reaches p (nucleus)
    beam: int = 0  # beam width; 0 = no beam search
    length_penalty: float = 1.0  # beam scores are log p / length ** length_penalty (0: raw log p)
    rhyme: bool = False  # a model of tunes: every sentence of a ci ends on the rhyme of its first (needs pypinyin)
    grammar: bool = True  # hold clause marks to a well-formed clause grammar where the model writes them

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.top_k < 0 or not 0 < self.top_p <= 1 or self.beam < 0 or self.length_penalty < 0:
            raise ValueError(f"invalid decoding strategy {self}")


GREEDY = Strategy(greedy=True)
SAMPLING = Strategy()  # temperature 1 over the whole vocabulary: the model's own distribution


class Decoded(NamedTuple):
    ids: list[list[int]]  # per code, without </s> (and without any prefix)
    logprobs: torch.Tensor  # (N,) log p(ids + </s> | z, prefix); without </s> where max_length cut the sentence


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """logits (N, V) with every token outside the top-k and outside the nucleus set to -inf.

    The nucleus is the smallest set of most likely tokens whose probability reaches top_p (Holtzman et
    al., 2020): a token stays when the tokens above it hold less than top_p; the first always stays.
    """
    if top_k and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs >= top_p  # the mass above each token already reaches top_p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def choose(logits: torch.Tensor, strategy: Strategy, generator: torch.Generator | None) -> torch.Tensor:
    """One next token per row of logits (N, V) -> (N,)."""
    if strategy.greedy:
        return logits.argmax(dim=-1)
    filtered = filter_logits(logits / strategy.temperature, strategy.top_k, strategy.top_p)
    return draw(filtered.softmax(dim=-1), generator)


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row of probs (N, V) by inverting the cumulative distribution at a uniform draw: the
    same law as torch.multinomial, an order of magnitude faster on a CPU for a large vocabulary. A token
    of probability 0 is never drawn: no u satisfies cdf[i - 1] <= u < cdf[i] when the two are equal."""
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.size(0), 1, generator=generator, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_max(probs.size(-1) - 1).squeeze(1)


def read(model: SentenceVAE, z: torch.Tensor, inputs: list[int], reads: torch.Tensor | None,
         targets: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read `inputs` for each code z (N, L), READ_CHUNK tokens at a time, each chunk a step (a long prefix for
    hundreds of codes is no one uninterrupted pass, nor a (N, T, V) block of logits): the decoder state (layers,
    N, H), the logits (N, V) of what follows, and log p(targets | z) (N,) for the `targets` of the inputs
    (the next token of each), when given. `reads`: what a form-aware decoder reads at each input (N, T, 4)."""
    state, total = model.initial_state(z), torch.zeros(z.size(0), device=z.device)
    for begin in range(0, len(inputs), READ_CHUNK):
        _between_steps()
        chunk = torch.tensor([inputs[begin:begin + READ_CHUNK]], device=z.device).expand(z.size(0), -1)
        logits, state = model.decode(chunk, z, state, None if reads is None else reads[:, begin:begin + READ_CHUNK])
        if targets is not None:
            wanted = torch.tensor(targets[begin:begin + READ_CHUNK], device=z.device).expand(z.size(0), -1)
            total += logits.float().log_softmax(dim=-1).gather(-1, wanted.unsqueeze(-1)).squeeze(-1).sum(dim=1)
    return state, logits[:, -1].float(), total


def start(model: SentenceVAE, z: torch.Tensor, prefix: list[int],
          held: HeldForm | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read <s> and the prefix for each code: the decoder state (layers, N, H) and the logits (N, V) of
    the first token to choose."""
    state, logits, _ = read(model, z, [BOS_ID, *prefix], None if held is None else held.prefix_reads(prefix, z.size(0)))
    return state, logits


@torch.no_grad()
def prefix_log_likelihood(model: SentenceVAE, z: torch.Tensor, prefix: list[int],
                          held: HeldForm | None = None) -> torch.Tensor:
    """log p(prefix | z) for each code z (N, L) -> (N,): how well each code explains the prefix, with
    no end of sentence (the sentence goes on); written in the `held` form, for a form-aware model."""
    if not prefix:
        return z.new_zeros(z.size(0))
    reads = None if held is None else held.prefix_reads(prefix[:-1], z.size(0))
    return read(model, z, [BOS_ID, *prefix[:-1]], reads, prefix)[2]


@torch.no_grad()
def generate(model: SentenceVAE, z: torch.Tensor, max_length: int, strategy: Strategy = GREEDY,
             generator: torch.Generator | None = None, banned: list[int] | None = None,
             prefix: list[int] | None = None, held: HeldForm | None = None,
             grammar: ClauseGrammar | None = None) -> Decoded:
    """z (N, L) -> a decoding per code, each at most max_length tokens (after the prefix), or exactly
    as long as the steps of `held` when given; held to the clause `grammar` when given."""
    masked = [PAD_ID, BOS_ID, UNK_ID, *(banned or [])]
    if held is not None:
        max_length = held.allowed.size(0) - 1
        held = held.to(z.device)
    width = strategy.beam
    ids: list[list[int]] = []
    logprobs = []
    for chunk in z.split(max(1, DECODE_BATCH // max(width, 1))):
        if width:
            best = [hypotheses[0] for hypotheses in beam_search(model, chunk, max_length, width,
                                                                  strategy.length_penalty, masked, prefix or [],
                                                                  held, grammar)]
            ids.extend(h.ids for h in best)
            logprobs.append(torch.tensor([h.logprob for h in best]))
        else:
            decoded = _sample(model, chunk, max_length, strategy, generator, masked, prefix or [], held, grammar)
            ids.extend(decoded.ids)
            logprobs.append(decoded.logprobs)
    return Decoded(ids, torch.cat(logprobs) if logprobs else torch.zeros(0))


def _sample(model: SentenceVAE, z: torch.Tensor, max_length: int, strategy: Strategy,
            generator: torch.Generator | None, masked: list[int], prefix: list[int],
            held: HeldForm | None = None, grammar: ClauseGrammar | None = None) -> Decoded:
    """Greedy or sampled decoding of a batch; finished rows leave the batch."""
    n = z.size(0)
    state, logits = start(model, z, prefix, held)
    rows = torch.arange(n, device=z.device)  # which code each active row belongs to
    tokens = torch.full((n, max_length + 1), PAD_ID, dtype=torch.long, device=z.device)
    logprobs = torch.zeros(n, device=z.device)
    for step in range(max_length + 1):  # + 1: room for </s> after a full-length sentence
        _between_steps()
        model_logprobs = logits.log_softmax(dim=-1)  # (faster on a CPU than logsumexp alone)
        logits[:, masked] = float("-inf")
        if held is not None:
            anchors = tokens[rows, held.anchor] if step in held.rhymes else None  # a rhyme step comes after its anchor
            logits.masked_fill_(~held.mask(step, anchors), float("-inf"))
        if grammar is not None:
            previous = tokens[rows, step - 1] if step else rows.new_full(rows.shape, prefix[-1] if prefix else BOS_ID)
            logits.masked_fill_(~grammar.allowed(previous), float("-inf"))
        token = choose(logits, strategy, generator)
        tokens[rows, step] = token
        ended = token == EOS_ID
        counted = ended | (step < max_length)  # at max_length only </s> fits: anything else is cut off
        logprobs[rows] += torch.where(counted, model_logprobs.gather(1, token.unsqueeze(1)).squeeze(1), 0.0)
        going = ~ended
        if step == max_length or not going.any():
            break
        rows, token, z, state = rows[going], token[going], z[going], state[:, going]
        reads = None if held is None else held.reads(step + 1, tokens, rows)
        step_logits, state = model.decode(token.unsqueeze(1), z, state, reads)
        logits = step_logits[:, -1].float()
    return Decoded(_until_end(tokens.tolist(), max_length), logprobs.cpu())


def _until_end(rows: list[list[int]], max_length: int) -> list[list[int]]:
    return [row[: row.index(EOS_ID)] if EOS_ID in row else row[:max_length] for row in rows]


class Hypothesis(NamedTuple):
    ids: list[int]
    logprob: float  # log p(ids + </s> | z, prefix); without </s> where max_length cut it
    score: float  # what the beam ranks by: logprob / (len(ids) + 1) ** length_penalty


@torch.no_grad()
def beam_search(model: SentenceVAE, z: torch.Tensor, max_length: int, width: int, length_penalty: float = 1.0,
                masked: list[int] | None = None, prefix: list[int] | None = None,
                held: HeldForm | None = None, grammar: ClauseGrammar | None = None) -> list[list[Hypothesis]]:
    """Beam search from each code z (N, L): per code, at most `width` hypotheses, best score first.

    Each step extends the live hypotheses of a code by every token and keeps the `width` most likely
    extensions; one that ends with </s> moves to the code's finished list, and the code is done when
    that list holds `width` hypotheses (at max_length, live ones are cut and finished as they are).
    The greedy decoding competes with the finished hypotheses, so the best never scores below greedy.
    """
    masked = masked if masked is not None else [PAD_ID, BOS_ID, UNK_ID]
    prefix = prefix or []
    greedy = _sample(model, z, max_length, GREEDY, None, masked, prefix, held, grammar)
    n = z.size(0)
    state, logits = start(model, z, prefix, held)
    banned = torch.zeros(logits.size(-1), dtype=torch.bool, device=z.device)
    banned[masked] = True
    state, logits, codes = (state.repeat_interleave(width, dim=1), logits.repeat_interleave(width, dim=0),
                            z.repeat_interleave(width, dim=0))
    live = torch.full((n, width), float("-inf"), device=z.device)  # log p of each live hypothesis
    live[:, 0] = 0.0  # at first one empty hypothesis per code
    history = torch.zeros(n, width, 0, dtype=torch.long, device=z.device)
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]
    done = [False] * n

    def hypothesis(ids: list[int], logprob: float) -> Hypothesis:
        return Hypothesis(ids, logprob, logprob / (len(ids) + 1) ** length_penalty)

    vocab = logits.size(-1)
    for step in range(max_length + 1):
        _between_steps()
        if held is not None:
            anchors = history[:, :, held.anchor].reshape(-1) if step > held.anchor else None
            ruled_out = banned | ~held.mask(step, anchors)
        else:
            ruled_out = banned
        if grammar is not None:
            previous = history[:, :, -1].reshape(-1) if step else history.new_full((n * width,), prefix[-1]
                                                                                     if prefix else BOS_ID)
            ruled_out = ruled_out | ~grammar.allowed(previous)
        totals = (live.view(-1, 1) + logits.log_softmax(dim=-1).masked_fill(ruled_out, float("-inf"))).view(n, -1)
        values, flat = totals.topk(min(2 * width, totals.size(1)), dim=1)
        next_live = torch.full_like(live, float("-inf"))
        parents = torch.zeros(n, width, dtype=torch.long, device=z.device)
        tokens = torch.full((n, width), PAD_ID, dtype=torch.long, device=z.device)
        for code in range(n):
            kept = 0
            for total, index in zip(values[code].tolist(), flat[code].tolist()):
                if done[code] or total == float("-inf") or kept == width:
                    break
                parent, token = divmod(index, vocab)
                ids = history[code, parent].tolist()
                if token == EOS_ID:
                    finished[code].append(hypothesis(ids, total))
                    done[code] = len(finished[code]) >= width
                elif step == max_length:  # no room for this token: the parent is cut where it is
                    finished[code].append(hypothesis(ids, float(live[code, parent])))
                    kept += 1
                else:
                    next_live[code, kept], parents[code, kept], tokens[code, kept] = total, parent, token
                    kept += 1
            done[code] = done[code] or kept == 0 or step == max_length
            if done[code]:
                next_live[code] = float("-inf")
        if all(done):
            break
        rows = (torch.arange(n, device=z.device).unsqueeze(1) * width + parents).view(-1)
        history = torch.cat([history.gather(1, parents.unsqueeze(-1).expand(-1, -1, history.size(2))),
                             tokens.unsqueeze(-1)], dim=2)
        live = next_live
        reads = None if held is None else held.reads(step + 1, history.view(n * width, -1))  # a view: no copy
        step_logits, state = model.decode(tokens.view(-1, 1), codes, state[:, rows], reads)
        logits = step_logits[:, -1].float()
    results = []
    for code in range(n):
        candidates = [*finished[code], hypothesis(greedy.ids[code], float(greedy.logprobs[code]))]
        unique = {tuple(h.ids): h for h in sorted(candidates, key=lambda h: h.score)}.values()  # best copy wins
        results.append(sorted(unique, key=lambda h: -h.score)[:width])
    return results
