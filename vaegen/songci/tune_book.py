"""`TuneBook`: everything a tune means to generation, asked once per call: the label id of each text, tunes
drawn by frequency, the form of each text (chosen, drawn, its own or the most common), and the `HeldForm` a
decoding keeps to, built once per form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from vaegen.core.errors import VaegenError
from vaegen.core.labels import Labels, Tune
from vaegen.core.tokenizer import Tokenizer
from vaegen.songci.form_inputs import of_form
from vaegen.songci.form_mask import HeldForm, form_masks
from vaegen.songci.forms import form_of, rhyme_steps, slots
from vaegen.songci.rhymes import DEFAULT_SCHEME, Scheme, rhyme_classes

# One tune for every text (refused if unknown), one per text as in a labelled corpus (an unknown one is
# read as the shared "other" label), or none (models without labels)
TuneNames = str | Sequence[str] | None
FormChoice = str | int | None  # a form written out, a rank among the tune's forms (1: the most common), or none
# Each text's form when none is chosen: its tune's most common, drawn by how often the tune used each, or the
# text's own (for texts given)
FormDefault = Literal["common", "drawn", "own"]


class TuneBook:
    """The labels of a model as generation uses them, on the model's device. `labels` None is a model without
    labels: it refuses tunes. For a `form_aware` model a held form carries the form ids its decoder reads."""

    def __init__(self, labels: Labels | None, tokenizer: Tokenizer, device: torch.device,
                 form_aware: bool = False) -> None:
        self.labels, self.tokenizer, self.device, self.form_aware = labels, tokenizer, device, form_aware
        self._held: dict[tuple[str, bool, Scheme], HeldForm | None] = {}  # (form, rhyme, scheme) -> held form
        self._classes: dict[Scheme, torch.Tensor] = {}  # rhyme scheme -> each piece's rhyme class

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

    def forms(self, labels: list[int] | None, tune: TuneNames, form: FormChoice, default: FormDefault = "common",
              generator: torch.Generator | None = None, texts: Sequence[str] = ()) -> list[str] | None:
        """The form of each text: the one `form` asks of the one `tune`, else as `default` says (drawn with
        `generator`, or each text's own); None without labels."""
        if form is not None and (labels is None or not isinstance(tune, str)):
            raise VaegenError("a form belongs to a tune: pass --tune NAME with --form")
        if labels is None:
            return None
        if form is not None:
            return [self.resolve(labels[0], form)] * len(labels)
        common = [self.tune(label).form for label in labels]  # "" for the shared "other" label
        if default == "drawn":
            assert generator is not None, "forms are drawn with a generator"
            return self.draw_forms(labels, generator)
        if default == "own":  # a text without clause marks has no form of its own
            return [form_of(text) or usual for text, usual in zip(texts, common)]
        return common

    def draw_forms(self, labels: list[int], generator: torch.Generator) -> list[str]:
        """A form for each label, drawn in proportion to how often its tune was written in each of its forms.
        A tune of one form draws nothing, leaving the generator's stream as it was."""
        forms = [self.tune(label).form for label in labels]
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

    def hold(self, form: str, rhyme: bool, prefix: list[int] | None = None,
             scheme: Scheme = DEFAULT_SCHEME) -> HeldForm | None:
        """What a decoding in `form` (`forms.form_of`'s string; "" for none) keeps to, after `prefix` when given:
        its masks, its rhymes by `scheme` if asked, and for a form-aware model its form ids; None without a form."""
        held = self._held_form(form, rhyme, scheme)
        if rhyme and held is None:
            raise VaegenError("rhymes need a tune whose form has sentences: a model trained on tunes and --tune, "
                              "or drop --rhyme")
        if held is None or prefix is None:
            return held
        if len(prefix) >= len(held.allowed) or not all(held.allowed[i, t] for i, t in enumerate(prefix)):
            raise VaegenError(f"the prefix does not fit the form {form}; begin as the form does, or pick "
                              "another form or tune")
        return held.after(prefix)

    def _held_form(self, form: str, rhyme: bool, scheme: Scheme) -> HeldForm | None:
        """A form's held form, built once per (form, rhyme, scheme)."""
        if (form, rhyme, scheme) not in self._held:
            steps = rhyme_steps(form) if form else []
            held = None
            if form:  # the masks that hold to it, and where each step stands in it for a form-aware decoder
                held = HeldForm(form_masks(form, self.tokenizer))
                if self.form_aware:
                    held = held._replace(form_ids=torch.from_numpy(of_form(form)), rhyme_slots=tuple(steps))
            if held is not None and rhyme and len(steps) > 1:
                held = held._replace(anchor=steps[0], rhymes=frozenset(steps[1:]), classes=self._rhyme_classes(scheme))
            self._held[form, rhyme, scheme] = held if held is None else held.to(self.device)
        return self._held[form, rhyme, scheme]

    def _rhyme_classes(self, scheme: Scheme) -> torch.Tensor:
        """Each piece's rhyme class under a scheme (`rhymes.rhyme_classes`), worked out once: every form shares it."""
        if scheme not in self._classes:
            self._classes[scheme] = rhyme_classes(self.tokenizer, scheme)
        return self._classes[scheme]
