"""How well generated Song ci keep to the rules of the form: format, rhyme, and how much is copied.

Format (SongNet's Format metric): a ci matches when its clause lengths and punctuation are its
tune's form. Rhyme: ci rhyme where a sentence ends (a clause closed by 。, ？ or ！), so a ci's rhyme
consistency is the share of those clause ends that can take the ci's most common rhyme, under a scheme of
`rhymes`: a measure to compare with what the training ci score under it, not a verdict.

Copying: the share of clauses of at least 5 characters that occur verbatim in the training corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from vaegen.songci.forms import CLAUSE, SENTENCE_ENDS, form_of
from vaegen.songci.rhymes import DEFAULT_SCHEME, Scheme, rhymes


def rhyme_consistency(text: str, scheme: Scheme = DEFAULT_SCHEME) -> float | None:
    """The share of a ci's sentence ends that can take the most common rhyme among them (a character counts
    toward each of its rhymes, so ends rhyme when their rhymes intersect); None for a ci with fewer than
    two sentence ends."""
    ends = [chars[-1] for chars, mark in CLAUSE.findall(text) if mark in SENTENCE_ENDS]
    if len(ends) < 2:
        return None
    return Counter(name for end in ends for name in rhymes(end, scheme)).most_common(1)[0][1] / len(ends)


def mean_rhyme_consistency(texts: Iterable[str], scheme: Scheme = DEFAULT_SCHEME) -> float:
    """Rhyme consistency averaged over the ci that have at least two sentence ends."""
    scores = [score for text in texts if (score := rhyme_consistency(text, scheme)) is not None]
    return sum(scores) / len(scores) if scores else 0.0


def format_accuracy(texts: list[str], forms: list[str]) -> float:
    """The share of ci whose form (clause lengths and marks) is exactly the form asked for."""
    return sum(form_of(text) == form for text, form in zip(texts, forms, strict=True)) / len(texts)


def copied_share(texts: Iterable[str], training: Iterable[str], min_chars: int = 5) -> tuple[int, int]:
    """(copied, counted): of the clauses with at least `min_chars` characters, how many occur verbatim
    somewhere in the training texts (within a clause or across one's mark)."""
    corpus = "\n".join(training)
    clauses = [chars for text in texts for chars, _ in CLAUSE.findall(text) if len(chars) >= min_chars]
    return sum(clause in corpus for clause in clauses), len(clauses)
