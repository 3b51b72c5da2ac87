"""Where a decoder stands in a ci's form, step by step: the form ids a form-aware decoder reads (after SongNet,
Li et al., 2020, "Rigid Formats Controlled Text Generation").

At every step a form-aware decoder (model.form_dim > 0) reads four ids beside the previous token (their tables'
sizes are the model's, `core.model`):

    kind     what the step writes: a character, a rhyme character (the last of a clause closed by 。？！,
             where ci rhyme), one of the marks, or the end
    clause   the index of its clause
    left     the characters left in the clause, this one included (0 at a mark and at the end)
    rhyme    at every rhyme slot after the first: the token written at the first one (else 0, padding);
             the model reads it as its rhyme group (`SentenceVAE.set_rhyme_groups`) and learns from the
             corpus which characters follow that rhyme

In training the form is the ci's own, read from its tokens; in generation it is the form asked for, and
the rhyme id is filled in once the first rhyme slot has been written (`form_mask.HeldForm.reads`). Ids past
the tables' sizes are clipped to their last entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vaegen.core.model import FORM_IDS, KINDS, MAX_CLAUSES, MAX_LEFT
from vaegen.core.tokenizer import Tokenizer
from vaegen.songci.forms import MARKS, SENTENCE_ENDS, slots

NONE, CHARACTER, RHYME = 0, 1, 2  # kinds; the marks follow, then the end
END = 3 + len(MARKS)
assert END == KINDS - 1, "the model's table of kinds holds every kind of step"
# A whole ci has up to ~50 clauses (later ones share the last clause id); the model reads rhyme groups below
# core.model.RHYME_GROUPS (pinyin has 21 in the Song ci vocabulary)


def skeleton_features(marks: Sequence[int | None]) -> np.ndarray:
    """The kind, clause and left of each step of a text given as its marks (None for a character, else the
    mark's index in MARKS), then of the end: (len(marks) + 1, 3) int64. Characters after the last mark form
    a clause without a mark."""
    features = np.zeros((len(marks) + 1, 3), dtype=np.int64)
    clause, start = 0, 0  # the current clause, and where its characters start

    def characters(end: int, rhymes: bool) -> None:
        length = end - start
        for offset in range(length):
            kind = RHYME if rhymes and offset == length - 1 else CHARACTER
            features[start + offset] = (kind, clause, length - offset)

    for position, mark in enumerate(marks):
        if mark is not None:
            characters(position, MARKS[mark] in SENTENCE_ENDS)
            features[position] = (3 + mark, clause, 0)
            clause, start = clause + 1, position + 1
    characters(len(marks), False)
    features[len(marks)] = (END, clause + (start < len(marks)), 0)
    features[:, 1] = np.minimum(features[:, 1], MAX_CLAUSES - 1)
    features[:, 2] = np.minimum(features[:, 2], MAX_LEFT - 1)
    return features


def rhyme_column(kinds: np.ndarray, tokens: Sequence[int] | np.ndarray) -> np.ndarray:
    """The rhyme ids of a written text: at each rhyme slot after the first, the token at the first."""
    column = np.zeros(len(kinds), dtype=np.int64)
    rhymes = np.flatnonzero(kinds == RHYME)
    if len(rhymes) > 1 and rhymes[0] < len(tokens):
        column[rhymes[1:]] = tokens[rhymes[0]]
    return column


class FormReader:
    """Reads forms for a tokenizer: which pieces are marks, the inputs of a written text, those of a form."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        sp = tokenizer.sp
        self.mark_of = {sp.piece_to_id(m): i for i, m in enumerate(MARKS) if not sp.is_unknown(sp.piece_to_id(m))}

    def of_text(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(ids) + 1, FORM_IDS): the inputs of the steps that write `ids` and then the end."""
        static = skeleton_features([self.mark_of.get(int(i)) for i in ids])
        return np.concatenate([static, rhyme_column(static[:, 0], ids)[:, None]], axis=1)

    def batch(self, sentences: Sequence[Sequence[int] | np.ndarray], width: int) -> torch.Tensor:
        """(B, width, FORM_IDS) for a padded batch of sentences (each written then ended); padding reads NONE."""
        out = np.zeros((len(sentences), width, FORM_IDS), dtype=np.int64)
        for row, ids in enumerate(sentences):
            features = self.of_text(ids)[:width]
            out[row, : len(features)] = features
        return torch.from_numpy(out)


def of_form(form: str) -> np.ndarray:
    """(steps + 1, 3): the kind, clause and left of each step of a ci in `form` (`forms.slots`), then the end."""
    return skeleton_features([None if slot is None else MARKS.index(slot) for slot in slots(form)])


def prefix_inputs(static: torch.Tensor, prefix: Sequence[int]) -> torch.Tensor:
    """(1, len(prefix) + 1, 4): what the decoder reads while it reads <s> and a prefix, written in a form whose
    inputs are `static` (S, 3)."""
    steps = static[: len(prefix) + 1]
    rhyme = torch.from_numpy(rhyme_column(steps[:, 0].cpu().numpy(), list(prefix))).to(static.device)
    return torch.cat([steps, rhyme.unsqueeze(1)], dim=1).unsqueeze(0)


def step_inputs(static: torch.Tensor, step: int, n: int, anchor: torch.Tensor | int | None) -> torch.Tensor:
    """(n, 1, 4): what n decoders read at `step` of a form whose inputs are `static` (S, 3), counted from its
    start: its kind, clause and left, and `anchor`, the first rhyme's token (a rhyme slot after the first;
    None elsewhere)."""
    out = torch.zeros(n, 1, FORM_IDS, dtype=torch.long, device=static.device)
    out[:, 0, :3] = static[min(step, len(static) - 1)]
    if anchor is not None:
        out[:, 0, 3] = anchor
    return out
