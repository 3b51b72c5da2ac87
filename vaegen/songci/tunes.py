"""Song ci tunes (词牌) as the training corpus has them: the forms of each tune and how likely each is.

A tune fixes how many clauses a ci has, how many characters each clause holds and which mark closes
it. The form of a ci (`forms`) is written clause by clause as length and mark: 浣溪沙's most common form
is "7。7。7。7，7。7。". Many tunes have variant forms (水调歌头 has four common ones), so a tune keeps
every form seen at least twice in training with its count (`core.labels.Tune`). What a tune means to
generation is `tune_book`'s.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from vaegen.core.labels import Labels, Tune
from vaegen.songci.forms import form_of

MIN_FORM_COUNT = 2  # a tune keeps the forms seen at least this often in training (and always its most common)
RARE_FORMS = 1000  # the unlisted forms a tune's rare mass is spread over: ten times the most forms seen once
# in one tune of data/songci/ci.train.tsv (89, of 洞仙歌's 130 ci)

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


def learn_labels(names: list[str], texts: list[str], min_count: int) -> Labels:
    """The labels of a conditional model: every tune seen at least `min_count` times, with its forms."""
    return Labels([tune for tune in tunes_of(zip(names, texts)) if tune.count >= min_count])


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
