"""vaegen: a sentence variational autoencoder (Bowman et al., 2016) that trains on any corpus and writes.

`vaegen.load(path)` returns a `SentenceGenerator` with `sample`, `near`, `reconstruct`, `encode`, `decode`,
`interpolate` and `complete`; a `Strategy` says how tokens are chosen.
Torch is imported on first use, so that `import vaegen` (and the CLI's --help) stays fast.

The modules, in the order data flows through them (text -> tokenizer -> batches -> model -> loss ->
checkpoint -> decoder -> text):

    config        every hyperparameter and its default; presets and --set overrides
    tokenizer     SentencePiece, chosen from the corpus
    data          reading corpora, the held-out split, length-grouped batches
    token_cache   a corpus's token ids, memory-mapped and cached between runs
    forms         the form of a ci as text
    form_inputs   where a decoding step stands in a form (a form-aware decoder's inputs)
    tunes         each tune's forms and decoding masks; a conditional model's labels
    clause_grammar  well-formed Chinese clauses in decoding without a form
    model         the sentence VAE: q(z|x), p(x|z), the decoder's code [z; c], per-token NLL
    objectives    the loss as pure functions: reconstruction, KL, free bits, annealing, word dropout
    phases        what a training step does at each point of a run
    run_state     where a run stands, saved and restored as one value
    train         the training loop, top to bottom
    metrics_log   the run's metrics log and throughput window
    distributed   torchrun: each rank's share of a batch, agreement across ranks
    resume        what a resumed run may change
    files         atomic writes and output checks
    checkpoint    the one checkpoint file; the shipped models
    devices       the device, and whether bf16 is fast on it
    metrics       IW bound, MI, active units, distinct-n, self-BLEU
    evaluation    validation during training, and `vaegen eval`
    decoding      greedy, sampling, top-k, top-p, beam search under form masks
    latent        interpolation paths, prefix-weighted codes
    generator     this API: a loaded model answering in text
    ci_metrics    Song ci format, rhyme (pinyin, Pingshui) and copy measures
    fluency       an n-gram judge of fluency, fitted on the training text alone
    plots         `vaegen plot`
    serve         `vaegen serve`: the API, the map, the page
    cli           the `vaegen` command, a thin shell over the above
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Generation", "SentenceGenerator", "Strategy", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vaegen import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'vaegen' has no attribute {name!r}")
