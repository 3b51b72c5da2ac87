"""Well-formed Chinese clauses, held at each decoding step by a model that writes them without a tune's form.

A Song ci line, like most classical Chinese text, is a run of clauses, each some characters closed by
one mark (，。、？！；：): it never opens with a mark, never holds two marks in a row, and ends on a mark
(every one of the 135,212 training lines of data/songci/train.txt does). A model of lines writes such
text only as well as it learnt it, and at temperature 1 it sometimes closes a clause twice ("…，。")
or stops mid-clause. Decoding under the grammar allows, after <s> or a mark, a character; after a
character, a character or a mark; and the end only after a mark. The masks of a tune's form (`form_mask`)
already hold whole ci to more than this, so the grammar serves decodings without a form. A model
whose vocabulary has no clause marks (English text, say) has no grammar.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch

from vaegen.core.tokenizer import BOS_ID, EOS_ID, Tokenizer
from vaegen.songci.forms import MARKS


class ClauseGrammar(NamedTuple):
    marks: torch.Tensor  # (V,) booleans: the pieces that are clause marks

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> ClauseGrammar | None:
        """The grammar of a model that writes the two commonest marks, 。 and ，, as pieces of their own."""
        sp = tokenizer.sp
        ids = [sp.piece_to_id(mark) for mark in MARKS]
        known = [i for i in ids if not sp.is_unknown(i)]
        if len(known) < 2 or sp.is_unknown(ids[0]) or sp.is_unknown(ids[1]):
            return None
        marks = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        marks[known] = True
        return cls(marks)

    def allowed(self, previous: torch.Tensor) -> torch.Tensor:
        """previous (N,), the token before the one to choose (<s> at the start) -> (N, V), the tokens allowed."""
        marks = self.marks.to(previous.device)
        after_mark = marks[previous]  # (N,)
        opening = after_mark | (previous == BOS_ID)  # a clause starts: a character must come
        allowed = ~(opening.unsqueeze(1) & marks.unsqueeze(0))  # (N, V): no mark to open a clause
        allowed[:, EOS_ID] = after_mark  # the end only after a mark
        return allowed

    def malformed(self, ids: list[int]) -> bool:
        """Whether a decoded line (without </s>) breaks the grammar: what a model earns without it."""
        is_mark = [bool(self.marks[i]) for i in ids]
        return (not ids or is_mark[0] or not is_mark[-1]
                or any(a and b for a, b in itertools.pairwise(is_mark)))
