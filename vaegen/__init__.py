"""vaegen: a sentence variational autoencoder (Bowman et al., 2016) that trains on any corpus and writes.

`vaegen.load(path)` returns a `SentenceGenerator` with `sample`, `near`, `reconstruct`, `encode`, `decode`,
`interpolate` and `complete`; a `Strategy` says how tokens are chosen.
Torch is imported on first use, so that `import vaegen` (and the CLI's --help) stays fast.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Generation", "SentenceGenerator", "Strategy", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vaegen import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'vaegen' has no attribute {name!r}")
