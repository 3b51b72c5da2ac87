"""The labels of a conditional model and their place in the checkpoint.

A conditional model (model.label_dim > 0) is trained on 'label<TAB>text' lines; for Song ci the label is
the tune (词牌). Each label the model knows is a `Tune`: its name, how many training texts carry it and the
forms those texts were written in (`songci.forms` writes a text's form; `songci.tunes.learn_labels` counts
them). The checkpoint stores them as plain values, which torch.load(weights_only=True) reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vaegen.core.errors import VaegenError


@dataclass(frozen=True)
class Tune:
    name: str
    count: int  # texts of this label in the training corpus
    # (form, texts written in it), most common first, ties by form: every form seen at least
    # songci.tunes.MIN_FORM_COUNT times, and the most common one even when seen once; () for a label without forms
    forms: tuple[tuple[str, int], ...] = ()

    @property
    def form(self) -> str:
        """Its most common form ("" for none)."""
        return self.forms[0][0] if self.forms else ""

    @property
    def share(self) -> float:
        """The share of its texts written in its most common form."""
        return self.forms[0][1] / self.count if self.forms else 0.0


class Labels:
    """The labels of a conditional model: id i + 1 is `known[i]`, most frequent first; id 0 (OTHER) stands
    for the labels too rare to learn alone and for those never seen in training."""

    OTHER = 0

    def __init__(self, known: list[Tune]) -> None:
        self.known = known
        self._ids = {tune.name: i + 1 for i, tune in enumerate(known)}

    def __len__(self) -> int:
        return len(self.known) + 1

    def ids(self, names: Iterable[str]) -> list[int]:
        return [self._ids.get(name, self.OTHER) for name in names]

    def tune(self, label: int) -> Tune:
        """The record of a label id; OTHER has no form of its own."""
        return self.known[label - 1] if label != self.OTHER else Tune("(other)", 0)

    def find(self, name: str) -> tuple[int, Tune]:
        """The id and record of a known label, or a user error that says where to find the names."""
        if name not in self._ids:
            raise VaegenError(f"unknown tune {name!r}; `vaegen tunes` lists the {len(self.known)} this model knows")
        return self._ids[name], self.known[self._ids[name] - 1]

    def as_payload(self) -> list[dict[str, Any]]:
        """Plain values for the checkpoint: each tune's forms as [form, count] pairs, and its most common form
        and share as well, as readers before forms read them."""
        return [{"name": t.name, "count": t.count, "form": t.form, "share": t.share,
                 "forms": [[form, n] for form, n in t.forms]} for t in self.known]

    @classmethod
    def from_payload(cls, rows: list[dict[str, Any]]) -> Labels:
        """The labels of a checkpoint; one written before forms has only each tune's most common form and
        its share, read as that one form written round(share * count) times."""
        return cls([Tune(str(r["name"]), int(r["count"]), _payload_forms(r)) for r in rows])


def _payload_forms(row: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    if "forms" in row:
        return tuple((str(form), int(n)) for form, n in row["forms"])
    return ((str(row["form"]), round(float(row["share"]) * int(row["count"]))),) if row["form"] else ()
