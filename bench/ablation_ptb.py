"""The posterior-collapse ablation on PTB: the reference setting (`configs/ptb-reference.toml`, GRU 256)
with remedies added one at a time, each a real training run scored on the test split by `vaegen eval`
(IW-NLL, KL, MI, AU, -ELBO, BLEU, time). The small shape keeps a rung to about 20 minutes here.

    python bench/ablation_ptb.py --data ../shared/data/ptb [--rungs anneal word-dropout ...]
        [--out runs/ablation-ptb] [--iw-samples 500] [--set section.key=value ...]

Each rung keeps the remedies of the rungs before it. Finished checkpoints in --out are reused.
"""

from __future__ import annotations

from pathlib import Path

from common import ROOT
from vae_vs_lm import Corpus, arguments, report_table, train_and_evaluate

FREE_BITS = ["train.free_bits=0.5"]  # 16 dimensions x 0.5 nats: the code is worth at least 8 nats
PRETRAINING = ["train.pretrain_epochs=2"]
RUNGS = {
    "anneal": ["train.word_dropout=0.0"],  # logistic annealing alone (Bowman et al.)
    "word-dropout": [],  # + word dropout 0.25: the preset
    "free-bits": FREE_BITS,
    "pretraining": FREE_BITS + PRETRAINING,  # Li et al. (2019): autoencoder first, decoder reset, free bits
    "the-rest": FREE_BITS + PRETRAINING + ["model.bn_gamma=0.7", "model.output_dropout=0.3"],
}

if __name__ == "__main__":
    parser = arguments(__doc__.splitlines()[0], ROOT / "configs" / "ptb-reference.toml", ROOT / "runs" / "ablation-ptb")
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.{train,valid,test}.txt")
    parser.add_argument("--rungs", nargs="+", default=list(RUNGS), choices=list(RUNGS))
    args = parser.parse_args()
    corpus = Corpus(*(args.data / f"ptb.{split}.txt" for split in ("train", "valid", "test")))
    results = {name: train_and_evaluate(name, corpus, args, args.overrides + RUNGS[name]) for name in args.rungs}
    print(report_table(results, "word"))
