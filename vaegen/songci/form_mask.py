"""A form as a decoding is held to it: the tokens allowed at each step, the rhyme rule, and the form ids a
form-aware decoder reads.

Decoding under a form (`HeldForm`) lets only characters into a character slot and only the form's mark into
a mark slot, then only the end of the ci: its format holds by construction. With rhymes asked for, every
sentence end after the first may take only tokens of the first's rhyme class. `tune_book.TuneBook.hold` builds one;
`generate.decoding` asks it, step by step, what may be written and what the decoder reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from vaegen.core.errors import VaegenError
from vaegen.core.tokenizer import EOS_ID, Tokenizer
from vaegen.songci import form_inputs
from vaegen.songci.forms import MARKS, slots


def character_pieces(tokenizer: Tokenizer) -> torch.Tensor:
    """(V,) booleans: the pieces that are one character other than a mark (no byte pieces, no special ids)."""
    sp = tokenizer.sp
    special = [sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) for i in range(tokenizer.vocab_size)]
    return torch.tensor([len(piece) == 1 and piece not in MARKS and not special[i]
                         for i, piece in enumerate(map(sp.id_to_piece, range(tokenizer.vocab_size)))])


def form_masks(form: str, tokenizer: Tokenizer) -> torch.Tensor:
    """(len(slots) + 1, vocab) booleans: the tokens allowed at each step of a ci in this form, the last
    step allowing only the end. A character slot allows every piece that is one character other than a
    mark (no byte pieces, no special ids); a mark slot allows that mark alone."""
    vocab = tokenizer.vocab_size
    sp = tokenizer.sp
    characters = character_pieces(tokenizer)
    masks = []
    for slot in slots(form):
        if slot is None:
            masks.append(characters)
            continue
        mark = sp.piece_to_id(slot)
        if sp.is_unknown(mark):
            raise VaegenError(f"the tokenizer has no piece for {slot!r}; this model cannot write the form {form}")
        masks.append(torch.zeros(vocab, dtype=torch.bool).index_fill_(0, torch.tensor([mark]), True))
    masks.append(torch.zeros(vocab, dtype=torch.bool).index_fill_(0, torch.tensor([EOS_ID]), True))
    return torch.stack(masks)


class HeldForm(NamedTuple):
    """What a decoding is held to, step by step: `allowed` (steps, V), the tokens allowed at each step, the
    last allowing only the end; and at each step of `rhymes`, only tokens of the same class (`classes`,
    (V,), -1 for tokens of no class) as the token chosen at step `anchor`."""

    allowed: torch.Tensor
    anchor: int = 0
    rhymes: frozenset[int] = frozenset()
    classes: torch.Tensor | None = None
    form_ids: torch.Tensor | None = None  # a form-aware decoder's (kind, clause, left) at each step of the whole form
    rhyme_slots: tuple[int, ...] = ()  # with `form_ids`: the whole form's rhyme slots (forms.rhyme_steps)
    prefix: tuple[int, ...] = ()  # the tokens a prefix already wrote in the form (`after`)

    def mask(self, step: int, anchors: torch.Tensor | None) -> torch.Tensor:
        """The tokens allowed at `step`: (V,), or (N, V) at a rhyme, given `anchors` (N,), each row's token at
        step `anchor` (needed at rhyme steps alone, which all come after it)."""
        if step not in self.rhymes or self.classes is None or anchors is None:
            return self.allowed[step]
        return self.allowed[step] & (self.classes == self.classes[anchors].unsqueeze(1))

    def after(self, prefix: list[int]) -> HeldForm:
        """The form of what follows `prefix`; where the anchor lies in the prefix its class is fixed."""
        k = len(prefix)
        written = self._replace(prefix=self.prefix + tuple(prefix))
        if self.classes is None or self.anchor >= k:
            return written._replace(allowed=self.allowed[k:], anchor=self.anchor - k,
                                    rhymes=frozenset(s - k for s in self.rhymes))
        allowed = self.allowed.clone()
        rhyming = self.classes == self.classes[prefix[self.anchor]]
        for step in self.rhymes:
            allowed[step] &= rhyming
        return written._replace(allowed=allowed[k:], anchor=0, rhymes=frozenset(), classes=None)

    def prefix_reads(self, prefix: Sequence[int], n: int) -> torch.Tensor | None:
        """What a form-aware decoder reads while it reads <s> and `prefix` (the form's first steps), for n codes:
        (n, len(prefix) + 1, 4); None for a form without form ids."""
        if self.form_ids is None:
            return None
        return form_inputs.prefix_inputs(self.form_ids, prefix).expand(n, -1, -1)

    def reads(self, step: int, tokens: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor | None:
        """What a form-aware decoder reads at `step` of this decoding, (N, 1, 4), given the `tokens` written so
        far (the rows `rows` of them, or all): at a rhyme slot after the first, the token at the first; None for
        a form without form ids."""
        if self.form_ids is None:
            return None
        at, anchor = len(self.prefix) + step, None
        if at in self.rhyme_slots[1:]:
            column = self.rhyme_slots[0] - len(self.prefix)  # where the first rhyme stands in `tokens`
            anchor = (self.prefix[self.rhyme_slots[0]] if column < 0
                      else tokens[:, column] if rows is None else tokens[rows, column])
        return form_inputs.step_inputs(self.form_ids, at, len(tokens) if rows is None else len(rows), anchor)

    def to(self, device: torch.device) -> HeldForm:
        return self._replace(allowed=self.allowed.to(device),
                             classes=None if self.classes is None else self.classes.to(device),
                             form_ids=None if self.form_ids is None else self.form_ids.to(device))
