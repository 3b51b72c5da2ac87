"""Song ci tunes (词牌): the forms of each tune and how likely each is, the per-step token masks that
make a decoded ci follow a form, `Labels`, the tunes (or any labels) a conditional model knows, and
`TuneBook`, what generation asks of them: ids for names, tunes and forms drawn by frequency, forms
named by rank, decoding masks.

A tune fixes how many clauses a ci has, how many characters each clause holds and which mark closes
it. The form of a ci (`forms`) is written clause by clause as length and mark: 浣溪沙's most common form
is "7。7。7。7，7。7。". Many tunes have variant forms (水调歌头 has four common ones), so a tune keeps
every form seen at least twice in training with its count. Decoding under a form lets only
characters into a character slot and only the form's mark into a mark slot, then only the end of
the ci: the format holds by construction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from vaegen.decoding import Form
from vaegen.errors import VaegenError
from vaegen.form_inputs import of_form
from vaegen.forms import MARKS, form_of, rhyme_steps, slots
from vaegen.tokenizer import EOS_ID, Tokenizer

if TYPE_CHECKING:  # ci_metrics imports this module
    from vaegen.ci_metrics import Scheme

MIN_FORM_COUNT = 2  # a tune keeps the forms seen at least this often in training (and always its most common)
RARE_FORMS = 1000  # the unlisted forms a tune's rare mass is spread over: ten times the most forms seen once
# in one tune of data/songci/ci.train.tsv (89, of 洞仙歌's 130 ci)

# One tune for every text (refused if unknown), one per text as in a labelled corpus (an unknown one is
# read as the shared "other" label), or none (models without labels)
TuneNames = str | Sequence[str] | None


@dataclass(frozen=True)
class Tune:
    name: str
    count: int  # ci of this tune in the training corpus
    # (form, ci written in it), most common first, ties by form: every form seen at least MIN_FORM_COUNT
    # times, and the most common one even when seen once; () for a label without forms
    forms: tuple[tuple[str, int], ...] = ()

    @property
    def form(self) -> str:
        """Its most common form ("" for none)."""
        return self.forms[0][0] if self.forms else ""

    @property
    def share(self) -> float:
        """The share of its ci written in its most common form."""
        return self.forms[0][1] / self.count if self.forms else 0.0


def tunes_of(ci: Iterable[tuple[str, str]]) -> list[Tune]:
    """Every tune of (tune, text) pairs with its forms, most frequent tune first (ties by name)."""
    forms: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for name, text in ci:
        forms[name][form_of(text)] += 1
    tunes = []
    for name, counter in forms.items():
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))  # most common, then by text
        kept = ranked[:1] + [(form, n) for form, n in ranked[1:] if n >= MIN_FORM_COUNT]
        tunes.append(Tune(name, sum(counter.values()), tuple(kept)))
    return sorted(tunes, key=lambda tune: (-tune.count, tune.name))


def form_probability(tune: Tune, form: str) -> float:
    """p(form | tune), smoothed from the training counts. With n the tune's ci, a listed form written c
    times gets c / (n + 1); the ci in unlisted forms (seen once, or dropped by an older checkpoint), r of
    them, plus one pseudo-ci for forms never seen give the rare mass (r + 1) / (n + 1), spread evenly
    over RARE_FORMS possible unlisted forms. Every form gets more than 0; the listed forms sum to
    (n - r) / (n + 1) < 1, and they and RARE_FORMS unlisted forms to 1."""
    counts = dict(tune.forms)
    if form in counts:
        return counts[form] / (tune.count + 1)
    rare = tune.count - sum(counts.values())
    return (rare + 1) / ((tune.count + 1) * RARE_FORMS)


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
        return self.known[label - 1] if label != self.OTHER else Tune("(other)", 0)

    def find(self, name: str) -> tuple[int, Tune]:
        """The id and record of a known label, or a user error that says where to find the names."""
        if name not in self._ids:
            raise VaegenError(f"unknown tune {name!r}; `vaegen tunes` lists the {len(self.known)} this model knows")
        return self._ids[name], self.known[self._ids[name] - 1]

    def as_payload(self) -> list[dict[str, Any]]:
        """Plain values for the checkpoint (which torch.load(weights_only=True) reads): each tune's forms
        as [form, count] pairs, and its most common form and share as well, as readers before forms read them."""
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


class TuneBook:
    """The labels of a model as generation uses them, on the model's device: the label id of each text,
    ids drawn by how often each tune was seen, names, each label's forms (the most common, drawn by
    frequency, or named by rank), and the `Form` masks a form holds a decoding to (built once per form,
    with rhymes or without). `labels` None is a model without labels: it refuses tunes. For a `form_aware`
    model the masks carry where each step stands in the form, which its decoder reads."""

    def __init__(self, labels: Labels | None, tokenizer: Tokenizer, device: torch.device,
                 form_aware: bool = False) -> None:
        self.labels, self.tokenizer, self.device, self.form_aware = labels, tokenizer, device, form_aware
        self._forms: dict[tuple[str, bool, Scheme | None], Form | None] = {}  # (form, rhyme, scheme) -> its masks
        self._classes: dict[Scheme | None, torch.Tensor] = {}  # rhyme scheme -> each piece's rhyme class

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

    def common(self, labels: list[int]) -> list[str]:
        """Each label's most common form ("" for the shared "other" label, which has none)."""
        return [self.tune(label).form for label in labels]

    def draw_forms(self, labels: list[int], generator: torch.Generator) -> list[str]:
        """A form for each label, drawn in proportion to how often its tune was written in each of its forms.
        A tune of one form draws nothing, leaving the generator's stream as it was."""
        forms = self.common(labels)
        for label in dict.fromkeys(labels):
            listed = self.tune(label).forms
            if len(listed) < 2:
                continue
            rows = [row for row, other in enumerate(labels) if other == label]
            counts = torch.tensor([float(n) for _, n in listed], device=self.device)
            drawn = torch.multinomial(counts, len(rows), replacement=True, generator=generator).tolist()
            for row, k in zip(rows, drawn):
                forms[row] = listed[k][0]
        return forms

    def resolve(self, label: int, form: str | int) -> str:
        """The form asked of a label: its rank among the tune's forms (1: the most common) or a form written
        out, which need not be one of them (the masks hold a decoding to any form)."""
        tune = self.tune(label)
        if isinstance(form, str):
            try:
                slots(form)
            except ValueError as error:
                raise VaegenError(str(error)) from None
            return form
        count = len(tune.forms)
        if not 1 <= form <= count:
            raise VaegenError(f"{tune.name} has {count} form{'' if count == 1 else 's'}; give a rank from 1 to "
                              f"{count} (`vaegen tunes {tune.name}` lists them) or a form written out")
        return tune.forms[form - 1][0]

    def form(self, form: str, rhyme: bool, scheme: Scheme | None = None) -> Form | None:
        """The decoding masks of a form (`form_of`'s string), with its rhymes if asked, by `scheme`
        (ci_metrics.SCHEMES; None: ci_metrics.DEFAULT_SCHEME), built once per (form, rhyme, scheme); None
        for "", no form (no punctuation to follow)."""
        if (form, rhyme, scheme) not in self._forms:
            steps = rhyme_steps(form) if form else []
            held = None
            if form:  # the masks that hold to it, and where each step stands in it for a form-aware decoder
                held = Form(form_masks(form, self.tokenizer))
                if self.form_aware:
                    held = held._replace(inputs=torch.from_numpy(of_form(form)), rhyme_slots=tuple(steps))
            if held is not None and rhyme and len(steps) > 1:
                held = held._replace(anchor=steps[0], rhymes=frozenset(steps[1:]), classes=self._rhyme_classes(scheme))
            self._forms[form, rhyme, scheme] = held if held is None else held.to(self.device)
        return self._forms[form, rhyme, scheme]

    def _rhyme_classes(self, scheme: Scheme | None) -> torch.Tensor:
        """Each piece's rhyme class under a scheme (ci_metrics.rhyme_classes), worked out once: every form shares it."""
        from vaegen.ci_metrics import DEFAULT_SCHEME, rhyme_classes  # here: ci_metrics imports this module

        if scheme not in self._classes:
            self._classes[scheme] = rhyme_classes(self.tokenizer, scheme or DEFAULT_SCHEME)
        return self._classes[scheme]
