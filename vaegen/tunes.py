"""Song ci tunes (词牌): the form of a ci, the most common form of each tune, the per-step token
masks that make a decoded ci follow a form, `Labels`, the tunes (or any labels) a conditional model
knows, and `TuneBook`, what generation asks of them: ids for names, tunes drawn by frequency, forms.

A tune fixes how many clauses a ci has, how many characters each clause holds and which mark closes
it. The form of a ci is written clause by clause as length and mark: 浣溪沙's most common form is
"7。7。7。7，7。7。". Decoding under a form lets only characters into a character slot and only the
form's mark into a mark slot, then only the end of the ci: the format holds by construction.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from vaegen.decoding import Form
from vaegen.errors import VaegenError
from vaegen.tokenizer import EOS_ID, Tokenizer

MARKS = "，。、？！；："
SENTENCE_ENDS = "。？！"  # the marks that close a sentence, where ci rhyme (the others pause within one)
CLAUSE = re.compile(f"([^{MARKS}]+)([{MARKS}])")
SLOT = re.compile(f"(\\d+)([{MARKS}])")

# One tune for every text (refused if unknown), one per text as in a labelled corpus (an unknown one is
# read as the shared "other" label), or none (models without labels)
TuneNames = str | Sequence[str] | None


def form_of(text: str) -> str:
    """The form of a ci, e.g. "7。7。7。7，7。7。"; text after the last mark is not part of any clause."""
    return "".join(f"{len(chars)}{mark}" for chars, mark in CLAUSE.findall(text))


def slots(form: str) -> list[str | None]:
    """A form as positions: None for a character, the mark where a clause closes."""
    if not form or SLOT.sub("", form):
        raise ValueError(f"not a form: {form!r}; write each clause as its length and mark, e.g. 7。7，")
    return [slot for length, mark in SLOT.findall(form) for slot in [None] * int(length) + [mark]]


def rhyme_steps(form: str) -> list[int]:
    """The steps (positions in `slots(form)`) of the last character of each sentence (a clause closed by
    。, ？ or ！): where a ci rhymes."""
    return [i - 1 for i, slot in enumerate(slots(form)) if slot is not None and slot in SENTENCE_ENDS]


@dataclass(frozen=True)
class Tune:
    name: str
    count: int  # ci of this tune in the training corpus
    form: str  # its most common form
    share: float  # the share of its ci written in that form


def tunes_of(ci: Iterable[tuple[str, str]]) -> list[Tune]:
    """Every tune of (tune, text) pairs with its most common form, most frequent tune first (ties by name)."""
    forms: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for name, text in ci:
        forms[name][form_of(text)] += 1
    tunes = []
    for name, counter in forms.items():
        count = sum(counter.values())
        form, written = min(counter.items(), key=lambda item: (-item[1], item[0]))  # most common, then first by text
        tunes.append(Tune(name, count, form, written / count))
    return sorted(tunes, key=lambda tune: (-tune.count, tune.name))


class Labels:
    """The labels of a conditional model: id i + 1 is `known[i]`, most frequent first; id 0 (OTHER) stands
    for the labels too rare to learn alone and for those never seen in training."""

    OTHER = 0

    def __init__(self, known: list[Tune]) -> None:
        self.known = known
        self._ids = {tune.name: i + 1 for i, tune in enumerate(known)}

    @classmethod
    def learn(cls, names: list[str], texts: list[str], min_count: int) -> Labels:
        return cls([tune for tune in tunes_of(zip(names, texts)) if tune.count >= min_count])

    def __len__(self) -> int:
        return len(self.known) + 1

    def ids(self, names: Iterable[str]) -> list[int]:
        return [self._ids.get(name, self.OTHER) for name in names]

    def tune(self, label: int) -> Tune:
        """The record of a label id; OTHER has no form of its own."""
        return self.known[label - 1] if label != self.OTHER else Tune("(other)", 0, "", 0.0)

    def find(self, name: str) -> tuple[int, Tune]:
        """The id and record of a known label, or a user error that says where to find the names."""
        if name not in self._ids:
            raise VaegenError(f"unknown tune {name!r}; `vaegen tunes` lists the {len(self.known)} this model knows")
        return self._ids[name], self.known[self._ids[name] - 1]

    def as_payload(self) -> list[dict[str, str | int | float]]:
        """Plain values for the checkpoint (which torch.load(weights_only=True) reads)."""
        return [{"name": t.name, "count": t.count, "form": t.form, "share": t.share} for t in self.known]

    @classmethod
    def from_payload(cls, rows: list[dict[str, str | int | float]]) -> Labels:
        return cls([Tune(str(r["name"]), int(r["count"]), str(r["form"]), float(r["share"])) for r in rows])


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
            raise ValueError(f"the tokenizer has no piece for {slot!r}; this model cannot write the form {form}")
        masks.append(torch.zeros(vocab, dtype=torch.bool).index_fill_(0, torch.tensor([mark]), True))
    masks.append(torch.zeros(vocab, dtype=torch.bool).index_fill_(0, torch.tensor([EOS_ID]), True))
    return torch.stack(masks)


class TuneBook:
    """The labels of a model as generation uses them, on the model's device: the label id of each text,
    ids drawn by how often each tune was seen, names, and the `Form` a label holds a decoding to (built
    once per label, with rhymes or without). `labels` None is a model without labels: it refuses tunes."""

    def __init__(self, labels: Labels | None, tokenizer: Tokenizer, device: torch.device) -> None:
        self.labels, self.tokenizer, self.device = labels, tokenizer, device
        self._forms: dict[tuple[int, bool], Form | None] = {}  # (label id, rhyme) -> its form

    def ids(self, tunes: TuneNames, n: int) -> list[int] | None:
        """The label id of each of n texts; None for a model without labels, which refuses a tune."""
        if self.labels is None:
            if tunes is not None:
                raise VaegenError("this model was trained without tunes (labels); drop --tune, or use a model "
                                  "trained on 'tune<TAB>text' lines with model.label_dim above 0")
            return None
        if tunes is None:
            raise VaegenError("this model writes to a tune: pass --tune NAME (`vaegen tunes` lists them)")
        if isinstance(tunes, str):
            return [self.labels.find(tunes)[0]] * n
        if len(tunes) != n:
            raise ValueError(f"{len(tunes)} tunes for {n} texts")
        return self.labels.ids(tunes)

    def draw(self, n: int, generator: torch.Generator) -> list[int] | None:
        """n label ids drawn in proportion to how often each tune was seen in training (None without labels)."""
        if self.labels is None:
            return None
        counts = torch.tensor([float(tune.count) for tune in self.labels.known], device=self.device)
        return (torch.multinomial(counts, n, replacement=True, generator=generator) + 1).tolist()

    def tune(self, label: int) -> Tune:
        assert self.labels is not None, "label ids exist for conditional models alone"
        return self.labels.tune(label)

    def name(self, label: int) -> str:
        return self.tune(label).name

    def form(self, label: int, rhyme: bool) -> Form | None:
        """A label's most common form, with its rhymes if asked; None when it has none (no punctuation to follow)."""
        if (label, rhyme) not in self._forms:
            form = self.tune(label).form
            steps = rhyme_steps(form) if form else []
            held = None
            if form and rhyme and len(steps) > 1:
                held = Form(form_masks(form, self.tokenizer), steps[0], frozenset(steps[1:]), self._rhyme_classes)
            elif form:
                held = Form(form_masks(form, self.tokenizer))
            self._forms[label, rhyme] = held if held is None else held.to(self.device)
        return self._forms[label, rhyme]

    @functools.cached_property
    def _rhyme_classes(self) -> torch.Tensor:
        """Each piece's rhyme class (ci_metrics.rhyme_classes), worked out once: every tune shares it."""
        from vaegen.ci_metrics import rhyme_classes  # here: ci_metrics imports this module

        return rhyme_classes(self.tokenizer)
