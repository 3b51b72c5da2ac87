"""The Song ci lines table: the VAE of `configs/songci.toml` and its RNN language-model baseline, trained
on data/songci/train.txt (validated on valid.txt) and scored on test.txt with `vaegen eval`.

    python bench/songci_lines.py [--config configs/songci.toml] [--out runs/bench-songci]
        [--iw-samples 500] [--models vae lm] [--set section.key=value ...]

Perplexity is per character (punctuation included) with the end of the line counted.
"""

from __future__ import annotations

from common import ROOT
from vae_vs_lm import Corpus, main, vae_and_lm_arguments

if __name__ == "__main__":
    args = vae_and_lm_arguments(__doc__.splitlines()[0], ROOT / "configs" / "songci.toml", ROOT / "runs" / "bench-songci").parse_args()
    data = ROOT / "data" / "songci"
    main(Corpus(data / "train.txt", data / "valid.txt", data / "test.txt"), args, "character")
