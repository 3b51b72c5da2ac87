"""Rebuild the Song ci (宋词) line corpus shipped in this folder.

The sentence VAE needs a small Chinese corpus that can ship with the project.
This script derives one from the MIT-licensed chinese-poetry database
(npm package chinese-poetry 2.0.1, dist/songci/): it reads the files
``ci.song.N.json`` in numeric order (``ci.song.2019y.json`` repeats three ci
already present and ``author.song.json`` holds author notes, so both are
skipped), cleans each ci, splits it into clauses ending in 。？！, removes
exact duplicate ci and assigns every ci to train/valid/test (~90/5/5) by the
md5 of its cleaned text.  Output is deterministic, byte for byte:
``train.txt``, ``valid.txt`` and ``test.txt``, UTF-8, one clause per line; and
``ci.train.tsv``, ``ci.valid.tsv``, ``ci.test.tsv``, one whole ci per line after
its tune name (词牌) and a tab, in the same splits (a ci whose tune is lost,
``失调名``, is left out of these).

Usage: python data/songci/build.py [--source PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent
REPO_ROOT = OUT_DIR.parents[1]
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "data" / "chinese-poetry-songci"

SOURCE_FILE = re.compile(r"ci\.song\.(\d+)\.json")
# Parenthesised editorial notes, e.g. （下缺） or （和陈漕使仙湖韵）.
ANNOTATION = re.compile(r"（[^（）]*）|\([^()]*\)|【[^【】]*】")
# Brackets whose content is genuine text: titles 《阳关》, quotes, and 〔态〕,
# the edition's mark for a character supplied by the editor.
UNWRAP = str.maketrans("", "", "《》〈〉“”‘’「」『』〔〕")
LACUNA = "缺"  # an annotation naming missing text, e.g. （上缺） or （缺词文）
PUNCTUATION = frozenset("，。、？！；：")
REPEATED_MARK = re.compile(r"([，。、？！；：])\1+")  # e.g. 听残莺、、啼过柳阴
CLAUSE = re.compile(r"[^。？！]*[。？！]")
CJK_RANGES = (
    (0x3400, 0x4DBF),  # Extension A
    (0x4E00, 0x9FFF),  # Unified Ideographs
    (0xF900, 0xFAFF),  # Compatibility Ideographs
    (0x20000, 0x323AF),  # Extensions B to H
)
TUNE_LOST = "失调名"
ALIAS = "・"  # "酹江月・念奴娇": the title used, then the tune's common name
MIN_CJK = 2
MAX_CHARS = 64
SPLITS = (("train", 90), ("valid", 95), ("test", 100))  # cumulative percent


@dataclass
class Stats:
    """Counts reported in the summary."""

    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    empty: int = 0
    short: int = 0
    long: int = 0
    unterminated: int = 0


def is_cjk(char: str) -> bool:
    """True for a CJK unified or compatibility ideograph."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in CJK_RANGES)


def source_files(source: Path) -> list[Path]:
    """The ci.song.N.json files in numeric order of N."""
    numbered = [(int(m.group(1)), p) for p in source.iterdir()
                if (m := SOURCE_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(numbered)]


def tune_name(rhythmic: str) -> str:
    """The tune's common name: "酹江月・念奴娇" is a 念奴娇 under another title."""
    return rhythmic.split(ALIAS)[-1].strip()


def read_ci(source: Path) -> list[tuple[str, list[str]]]:
    """The tune name and paragraphs of every ci, in source order."""
    ci: list[tuple[str, list[str]]] = []
    for path in source_files(source):
        entries = json.loads(path.read_text(encoding="utf-8"))
        ci.extend((tune_name(entry["rhythmic"]), entry["paragraphs"]) for entry in entries)
    return ci


def clean(paragraph: str) -> str:
    """A paragraph without notes, bracket marks, doubled marks or edge spaces."""
    text = ANNOTATION.sub("", paragraph).translate(UNWRAP).strip()
    return REPEATED_MARK.sub(r"\1", text)


def drop_reason(paragraph: str) -> str | None:
    """Why a paragraph spoils its whole ci, or None when it can be kept."""
    if "□" in paragraph:
        return "lost character □"
    if any(LACUNA in note for note in ANNOTATION.findall(paragraph)):
        return "lacuna note （…缺…）"
    if any(not is_cjk(c) and c not in PUNCTUATION for c in clean(paragraph)):
        return "garbled or stray character"
    return None


def clauses(paragraph: str, stats: Stats) -> list[str]:
    """Clauses ending in 。？！ that pass the length limits."""
    found = CLAUSE.findall(paragraph)
    if "".join(found) != paragraph:
        stats.unterminated += 1
    kept: list[str] = []
    for line in found:
        if sum(map(is_cjk, line)) < MIN_CJK:
            stats.short += 1
        elif len(line) > MAX_CHARS:
            stats.long += 1
        else:
            kept.append(line)
    return kept


def ci_lines(paragraphs: list[str], stats: Stats) -> list[str]:
    """The clean lines of one ci; empty when the ci is dropped."""
    for paragraph in paragraphs:
        if reason := drop_reason(paragraph):
            stats.dropped[reason] += 1
            return []
    lines = [line for p in paragraphs for line in clauses(clean(p), stats)]
    stats.empty += not lines
    return lines


def split_of(text: str) -> str:
    """The split a ci belongs to, from the md5 of its cleaned text."""
    bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % 100
    return next(name for name, bound in SPLITS if bucket < bound)


Ci = tuple[str, list[str]]  # tune name, lines


def build(source: Path) -> tuple[dict[str, list[Ci]], Stats]:
    """Kept ci, as tune name and lines, per split, plus the counts."""
    stats = Stats()
    splits: dict[str, list[Ci]] = {name: [] for name, _ in SPLITS}
    seen: set[str] = set()
    for tune, paragraphs in read_ci(source):
        stats.read += 1
        lines = ci_lines(paragraphs, stats)
        if not lines:
            continue
        text = "\n".join(lines)
        if text in seen:
            stats.duplicates += 1
            continue
        seen.add(text)
        splits[split_of(text)].append((tune, lines))
    return splits, stats


def write(splits: dict[str, list[Ci]]) -> None:
    """Write UTF-8, LF-terminated files per split: the lines, and the whole ci with their tunes."""
    for name, ci in splits.items():
        text = "".join(line + "\n" for _, lines in ci for line in lines)
        (OUT_DIR / f"{name}.txt").write_text(text, encoding="utf-8", newline="\n")
        whole = "".join(f"{tune}\t{''.join(lines)}\n" for tune, lines in ci if tune != TUNE_LOST)
        (OUT_DIR / f"ci.{name}.tsv").write_text(whole, encoding="utf-8", newline="\n")


def summary(splits: dict[str, list[Ci]], stats: Stats) -> str:
    """A short human-readable account of the build."""
    out = [(f"ci read {stats.read}, kept {sum(map(len, splits.values()))}, "
           f"exact duplicates {stats.duplicates}, left empty {stats.empty}")]
    out += [f"  dropped ({reason}): {n}" for reason, n in sorted(stats.dropped.items())]
    out.append(f"lines dropped: {stats.short} under {MIN_CJK} CJK, "
               f"{stats.long} over {MAX_CHARS} chars, "
               f"{stats.unterminated} unterminated tails")
    for name, ci in splits.items():
        lines = [line for _, lines in ci for line in lines]
        chars = sum(map(len, lines))
        out.append(f"{name:5} ci {len(ci):6}  lines {len(lines):7}  "
                   f"chars {chars:8}  distinct {len(set(''.join(lines))):5}  "
                   f"mean {chars / len(lines):.2f}")
    for name, ci in splits.items():
        tuned = [(tune, sum(map(len, lines))) for tune, lines in ci if tune != TUNE_LOST]
        out.append(f"ci.{name}.tsv: {len(tuned)} ci, {len({t for t, _ in tuned})} tunes, "
                   f"{sum(n for _, n in tuned)} chars, longest {max(n for _, n in tuned)}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder holding ci.song.N.json (default: %(default)s)")
    args = parser.parse_args()
    splits, stats = build(args.source)
    write(splits)
    print(summary(splits, stats))


if __name__ == "__main__":
    main()
