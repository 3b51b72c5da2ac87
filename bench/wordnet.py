"""The English table: the VAE of `configs/wordnet.toml` (the model that ships as `en`) and its RNN
language-model baseline, trained on data/wordnet/train.txt (validated on valid.txt) and scored on test.txt
with `vaegen eval`.

    python bench/wordnet.py [--config configs/wordnet.toml] [--out runs/bench-wordnet]
        [--iw-samples 500] [--models vae lm] [--set section.key=value ...]

Perplexity is per word (whitespace-separated) with the end of the line counted.
"""

from __future__ import annotations

from common import ROOT
from vae_vs_lm import Corpus, main, vae_and_lm_arguments

if __name__ == "__main__":
    args = vae_and_lm_arguments(__doc__.splitlines()[0], ROOT / "configs" / "wordnet.toml", ROOT / "runs" / "bench-wordnet").parse_args()
    data = ROOT / "data" / "wordnet"
    main(Corpus(data / "train.txt", data / "valid.txt", data / "test.txt"), args, "word")
