"""The Penn Treebank table: the VAE of `configs/ptb.toml` and its RNN language-model baseline, trained on
the train split (validated on valid) and scored on the test split with `vaegen eval`.

    python bench/ptb.py --data ../shared/data/ptb [--config configs/ptb.toml] [--out runs/bench-ptb]
        [--iw-samples 500] [--models vae lm] [--set section.key=value ...]

PTB's licence is research-only: pass its folder, never copy it into the project. Perplexity is per word
with the end of sentence counted (78,669 test words + 3,761 sentence ends = 82,430 tokens), as in
Mikolov's counts; the NLL is per sentence in nats.
"""

from __future__ import annotations

from pathlib import Path

from common import ROOT
from vae_vs_lm import Corpus, main, vae_and_lm_arguments

if __name__ == "__main__":
    parser = vae_and_lm_arguments(__doc__.splitlines()[0], ROOT / "configs" / "ptb.toml", ROOT / "runs" / "bench-ptb")
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.{train,valid,test}.txt")
    args = parser.parse_args()
    main(Corpus(*(args.data / f"ptb.{split}.txt" for split in ("train", "valid", "test"))), args, "word")
