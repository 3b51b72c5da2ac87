"""Points of the latent space: paths between two codes, and picking codes that explain a prefix.

Pure functions on tensors; `generator` turns their codes into text.
"""

from __future__ import annotations

import torch

from vaegen.core.config import INTERPOLATION_PATHS


def linear_path(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` evenly spaced points (steps, L) on the segment from a to b (L,), both ends included."""
    t = torch.linspace(0.0, 1.0, steps, device=a.device, dtype=a.dtype).unsqueeze(1)
    return (1 - t) * a + t * b


def slerp_path(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points from a to b (L,) along the great circle between their directions, with the norm
    moving linearly from |a| to |b|.

    Under a Gaussian prior almost all mass lies near a sphere, and the midpoint of a straight line
    between two typical codes is atypically short; this path stays at typical norms (White, 2016).
    """
    t = torch.linspace(0.0, 1.0, steps, device=a.device, dtype=a.dtype).unsqueeze(1)
    norm_a, norm_b = a.norm(), b.norm()
    if norm_a == 0 or norm_b == 0:
        return linear_path(a, b, steps)
    unit_a, unit_b = a / norm_a, b / norm_b
    angle = torch.arccos((unit_a @ unit_b).clamp(-1.0, 1.0))
    if torch.sin(angle) < 1e-6:  # (anti)parallel: no unique great circle; the straight line decides
        directions = linear_path(unit_a, unit_b, steps)
        directions = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    else:
        directions = (torch.sin((1 - t) * angle) * unit_a + torch.sin(t * angle) * unit_b) / torch.sin(angle)
    return directions * ((1 - t) * norm_a + t * norm_b)


def path(a: torch.Tensor, b: torch.Tensor, steps: int, kind: str) -> torch.Tensor:
    if kind not in INTERPOLATION_PATHS:
        raise ValueError(f"unknown path {kind!r}; use one of {', '.join(INTERPOLATION_PATHS)}")
    return linear_path(a, b, steps) if kind == "linear" else slerp_path(a, b, steps)


def resample_by_likelihood(log_likelihoods: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """Indices of n draws, with replacement, from candidates weighted by their likelihoods (M,), most
    likely first.

    With candidates z_m ~ p(z) and weights p(prefix | z_m), the draws follow p(z | prefix): importance
    resampling, the sampling counterpart of the paper's imputation.
    """
    weights = (log_likelihoods - log_likelihoods.max()).exp()
    drawn = torch.multinomial(weights, n, replacement=True, generator=generator)
    return drawn[log_likelihoods[drawn].argsort(descending=True, stable=True)]
