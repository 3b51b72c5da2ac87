"""Turning latent codes into token ids: batched greedy or temperature sampling from p(x|z).

All sentences of a batch advance together one token per step; finished ones are padded. The decoder
never emits <pad>, <s> or <unk>, which are structural or carry no text, nor the ids in `banned`
(the tokenizer's control-character bytes).
"""

from __future__ import annotations

import torch

from vaegen.model import SentenceVAE
from vaegen.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

DECODE_BATCH = 1024  # codes decoded at once: bounds memory for large --n


@torch.no_grad()
def generate(model: SentenceVAE, z: torch.Tensor, max_length: int, greedy: bool = True,
             temperature: float = 1.0, generator: torch.Generator | None = None,
             banned: list[int] | None = None) -> list[list[int]]:
    """z (N, L) -> N token-id lists (without </s>), each at most max_length long."""
    masked = [PAD_ID, BOS_ID, UNK_ID, *(banned or [])]
    sentences: list[list[int]] = []
    for chunk in z.split(DECODE_BATCH):
        sentences.extend(_generate_batch(model, chunk, max_length, greedy, temperature, generator, masked))
    return sentences


def _generate_batch(model: SentenceVAE, z: torch.Tensor, max_length: int, greedy: bool, temperature: float,
                    generator: torch.Generator | None, masked: list[int]) -> list[list[int]]:
    batch = z.size(0)
    state = model.initial_state(z)  # (layers, B, H)
    token = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=z.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=z.device)
    steps = []
    for _ in range(max_length + 1):  # + 1: room for </s> after a full-length sentence
        logits, state = model.decode(token, z, state)  # (B, 1, V)
        logits = logits[:, -1]
        logits[:, masked] = float("-inf")
        if greedy:
            token = logits.argmax(dim=-1, keepdim=True)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator)
        token = token.masked_fill(finished.unsqueeze(1), PAD_ID)
        steps.append(token)
        finished |= token.squeeze(1) == EOS_ID
        if finished.all():
            break
    ids = torch.cat(steps, dim=1).tolist()  # (B, steps); padding only ever follows </s>
    return [row[: row.index(EOS_ID)] if EOS_ID in row else row[:max_length] for row in ids]
