"""The form of a ci as text: its clauses, their lengths and the marks that close them.

A form is written clause by clause as length and mark: 浣溪沙's most common form is "7。7。7。7，7。7。".
These are pure string functions that everything about forms builds on: `tunes` (each tune's forms),
`form_mask` (the decoding masks that hold to one), `form_inputs` (where a step stands in a form) and
`ci_metrics`.
"""

from __future__ import annotations

import re

MARKS = "，。、？！；："
SENTENCE_ENDS = "。？！"  # the marks that close a sentence, where ci rhyme (the others pause within one)
CLAUSE = re.compile(f"([^{MARKS}]+)([{MARKS}])")
SLOT = re.compile(f"(\\d+)([{MARKS}])")


def form_of(text: str) -> str:
    """The form of a ci, e.g. "7。7。7。7，7。7。"; text after the last mark is not part of any clause."""
    return "".join(f"{len(chars)}{mark}" for chars, mark in CLAUSE.findall(text))


def slots(form: str) -> list[str | None]:
    """A form as positions: None for a character, the mark where a clause closes."""
    if not form or SLOT.sub("", form):
        raise ValueError(f"not a form: {form!r}; write each clause as its length and mark, e.g. 7。7，")
    return [slot for length, mark in SLOT.findall(form) for slot in [None] * int(length) + [mark]]


def length(form: str) -> int:
    """How many steps a decoding in `form` takes (len(slots(form))), counted without spelling them out: a form
    of a billion characters costs nothing to refuse."""
    return sum(int(count) + 1 for count, _ in SLOT.findall(form))


def rhyme_steps(form: str) -> list[int]:
    """The steps (positions in `slots(form)`) of the last character of each sentence (a clause closed by
    。, ？ or ！): where a ci rhymes."""
    return [i - 1 for i, slot in enumerate(slots(form)) if slot is not None and slot in SENTENCE_ENDS]
