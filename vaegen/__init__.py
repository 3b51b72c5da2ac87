"""vaegen: a sentence variational autoencoder (Bowman et al., 2016) that trains on any corpus and writes.

`vaegen.load(path)` returns a `SentenceGenerator` with `sample`, `near`, `reconstruct`, `encode`, `decode`,
`interpolate` and `complete`; a `Strategy` says how tokens are chosen.
Torch is imported on first use, so that `import vaegen` (and the CLI's --help) stays fast.

The folders are the layers, each importing only those below it (docs/architecture.md; a test checks it):

    core/      config, errors, files and the cache, devices, tokenizer, data, token cache, the model,
               objectives, metrics, a conditional model's labels, the checkpoint
    songci/    what a ci's form means: forms, form ids, held forms (masks), rhymes, tunes, clause grammar,
               ci metrics
    train/     the training loop, phases, run state, resume, metrics log, torchrun, its validation
    generate/  decoding, latent paths, this API (`generate.generator`)
    eval/      `vaegen eval`'s report, the fluency judge, plots
    cli/       the `vaegen` command, a thin shell over the above
    serve/     `vaegen serve`: settings, the API, the map, the page

Data flows one way: text -> tokenizer -> batches -> model -> loss -> checkpoint -> decoder -> text.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Generation", "SentenceGenerator", "Strategy", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vaegen.generate import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'vaegen' has no attribute {name!r}")
