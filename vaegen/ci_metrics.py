"""How well generated Song ci keep to the rules of the form: format, rhyme, and how much is copied.

Format (SongNet's Format metric): a ci matches when its clause lengths and punctuation are its
tune's form. Rhyme: ci rhyme where a sentence ends (a clause closed by 。, ？ or ！), so a ci's rhyme
consistency is the share of those clause ends whose last character has the ci's most common rhyme.
A character's rhyme comes from pypinyin (pronunciations of some 40,000 characters, polyphones
included): its final without the medial i, u or ü, so that 天 tian, 山 shan and 关 guan all rhyme in
"an". It is modern Mandarin, not the Song rhyme books (entering tones are lost), so it is a measure
to compare with what the training ci score under it, not a verdict. Copying: the share of clauses
of at least 5 characters that occur verbatim in the training corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import torch

from vaegen.errors import VaegenError
from vaegen.tokenizer import Tokenizer
from vaegen.tunes import CLAUSE, SENTENCE_ENDS, character_pieces, form_of


@lru_cache(maxsize=65_536)
def rhyme(character: str) -> str:
    """The rhyme of one character: its final without the medial; ê where a medial leaves only e (也 ye, 雪 xue),
    which does not rhyme with the e of 歌 ge."""
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:
        raise VaegenError("rhymes need pypinyin: pip install 'vaegen[songci]'")
    final = lazy_pinyin(character, style=Style.FINALS, strict=True)[0]
    if len(final) > 1 and final[0] in "iuv" and final[1] in "aeo":
        final = final[1:]
        return "ê" if final == "e" else final
    return final


def rhyme_classes(tokenizer: Tokenizer) -> torch.Tensor:
    """(V,) the rhyme of each piece that is one character (not a mark) as a class id; -1 for any other piece."""
    names: dict[str, int] = {}
    classes = torch.full((tokenizer.vocab_size,), -1, dtype=torch.long)
    for i in character_pieces(tokenizer).nonzero().flatten().tolist():
        classes[i] = names.setdefault(rhyme(tokenizer.sp.id_to_piece(i)), len(names))
    return classes


def rhyme_consistency(text: str) -> float | None:
    """The share of a ci's sentence ends whose last character has the most common rhyme among them;
    None for a ci with fewer than two sentence ends."""
    ends = [chars[-1] for chars, mark in CLAUSE.findall(text) if mark in SENTENCE_ENDS]
    if len(ends) < 2:
        return None
    return Counter(map(rhyme, ends)).most_common(1)[0][1] / len(ends)


def mean_rhyme_consistency(texts: Iterable[str]) -> float:
    """Rhyme consistency averaged over the ci that have at least two sentence ends."""
    scores = [score for score in map(rhyme_consistency, texts) if score is not None]
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
