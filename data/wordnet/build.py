"""Rebuild the English corpus shipped in this folder: WordNet 3.0's usage examples, one per line.

The English model must be trained on text whose licence lets a model trained on it ship; WordNet's does
(Princeton's permissive licence, `LICENSE` here, which travels with the corpus and the model). Its glosses
carry about 48,000 quoted usage examples written for the dictionary ("the battalion was a mere skeleton
of its former self"): modern, varied, short. This script reads them from the data files of Debian's
package `wordnet-base` (1:3.0-37; `apt-get install wordnet-base` puts them in /usr/share/wordnet), drops
attributed literary quotes, notes and offensive lines, keeps examples of 3 to 30 words once each and
assigns every example to train/valid/test (~90/5/5) by the md5 of its text. Output is deterministic,
byte for byte: `train.txt`, `valid.txt`, `test.txt`, UTF-8, one example per line.

Usage: python data/wordnet/build.py [--source DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/usr/share/wordnet")
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
SPLITS = (("train", 90), ("valid", 95), ("test", 100))  # cumulative percent
MIN_WORDS, MAX_WORDS = 3, 30

# A quoted example and what follows it up to the next one: `"text"- Author` is an attributed quote,
# `"text" (note)` or `"text" means ...` a lexicographer's note about it.
EXAMPLE = re.compile(r'"([^"]*)"([^;"]*)')
# Usage domains (WordNet's ";u" pointers) whose senses are insults or obscenities.
OFFENSIVE_DOMAINS = frozenset({"06717170", "06718862", "07124340"})  # disparagement, ethnic slur, obscenity
OFFENSIVE_GLOSS = re.compile(r"\b(offensive (term|word|name|slang)|obscen|vulgar|derogator|slur|disparag|contemptuous)", re.IGNORECASE)
# Words no line may hold whatever their sense: the profanities a dictionary's examples still use.
PROFANITIES = frozenset({"fuck", "fucking", "fucked", "shit", "cunt", "nigger", "bitch", "bastard", "whore",
                         "slut", "faggot", "prick", "dick", "piss", "pissed", "crap", "damn", "goddamn", "asshole"})
WORD = re.compile(r"[a-z]+")
ALLOWED = re.compile(r"[A-Za-z0-9 ,.'?!;:$%&/()+=-]+")
SPACES = re.compile(r"\s+")


@dataclass
class Synset:
    """What the build needs of one synset: its words, whether a sense is offensive, its quoted examples."""

    words: list[str]
    offensive: bool
    examples: list[tuple[str, str]]  # (example, what follows its closing quote)


def parse(line: str) -> Synset:
    """One line of a WordNet data file (wndb(5WN)): synset offset, lexicographer file, type, words,
    pointers, then `| gloss; "example"; ...`."""
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    count = int(fields[3], 16)
    words = [fields[4 + 2 * i].lower() for i in range(count)]
    at = 4 + 2 * count
    pointers = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(int(fields[at]))]
    domains = {target for symbol, target, _, _ in pointers if symbol == ";u"}
    definition = gloss.split('"', 1)[0]
    offensive = bool(domains & OFFENSIVE_DOMAINS) or bool(OFFENSIVE_GLOSS.search(definition))
    return Synset(words, offensive, [(m.group(1), m.group(2).strip()) for m in EXAMPLE.finditer(gloss)])


def read_synsets(source: Path) -> list[Synset]:
    """Every synset of the four data files, in file order (the license header lines start with spaces)."""
    synsets: list[Synset] = []
    for pos in PARTS_OF_SPEECH:
        with open(source / f"data.{pos}", encoding="utf-8") as handle:
            synsets.extend(parse(line) for line in handle if not line.startswith("  "))
    return synsets


def offensive_words(synsets: list[Synset]) -> frozenset[str]:
    """Single words at least half of whose senses are offensive, with the fixed profanities: a line holding
    one is dropped wherever it came from ('dog' or 'pig' keep their lines, being insults in few senses)."""
    senses: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    for synset in synsets:
        for word in synset.words:
            if "_" not in word:
                senses[word] += 1
                bad[word] += synset.offensive
    return frozenset(w for w, n in senses.items() if 2 * bad[w] >= n) | PROFANITIES


def clean(example: str) -> str:
    """WordNet's `quoted' words with plain quotes, single spaces, no edge spaces."""
    return SPACES.sub(" ", example.replace("`", "'")).strip()


def drop_reason(synset: Synset, example: str, after: str, banned: frozenset[str]) -> str | None:
    """Why an example is not kept, or None."""
    if after.startswith("-"):
        return "attributed quote"
    if after:
        return "note after the example"
    if synset.offensive:
        return "example of an offensive sense"
    if banned.intersection(WORD.findall(example.lower())):
        return "offensive word"
    if not ALLOWED.fullmatch(example):
        return "unusual character"
    if not MIN_WORDS <= len(example.split()) <= MAX_WORDS:
        return f"under {MIN_WORDS} or over {MAX_WORDS} words"
    return None


def split_of(text: str) -> str:
    """The split an example belongs to, from the md5 of its text."""
    bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % 100
    return next(name for name, bound in SPLITS if bucket < bound)


def build(source: Path) -> tuple[dict[str, list[str]], Counter[str]]:
    """Kept examples per split, in source order, and why the others were dropped."""
    synsets = read_synsets(source)
    banned = offensive_words(synsets)
    splits: dict[str, list[str]] = {name: [] for name, _ in SPLITS}
    dropped: Counter[str] = Counter()
    seen: set[str] = set()
    for synset in synsets:
        for raw, after in synset.examples:
            example = clean(raw)
            if reason := drop_reason(synset, example, after, banned):
                dropped[reason] += 1
            elif example.lower() in seen:
                dropped["duplicate"] += 1
            else:
                seen.add(example.lower())
                splits[split_of(example)].append(example)
    return splits, dropped


def summary(splits: dict[str, list[str]], dropped: Counter[str]) -> str:
    """A short human-readable account of the build."""
    out = [f"examples kept {sum(map(len, splits.values()))}"]
    out += [f"  dropped ({reason}): {n}" for reason, n in sorted(dropped.items())]
    for name, lines in splits.items():
        words = sum(len(line.split()) for line in lines)
        out.append(f"{name:5} lines {len(lines):6}  words {words:7}  mean {words / len(lines):.2f}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder holding WordNet's data.noun, data.verb, data.adj, data.adv "
                             "(default: %(default)s)")
    args = parser.parse_args()
    splits, dropped = build(args.source)
    for name, lines in splits.items():
        (OUT_DIR / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8", newline="\n")
    print(summary(splits, dropped))


if __name__ == "__main__":
    main()
