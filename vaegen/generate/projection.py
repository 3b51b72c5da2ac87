"""Where a map's sentences go on the plane, and how well the plane keeps their neighbours in z.

A sentence VAE's codes fill their dimensions almost evenly (each principal axis of the shipped models' codes holds
5-8% of the variance), so on the two principal axes a sentence's neighbours are strangers: of its 10 nearest in z,
about 4% are among its 10 nearest there. t-SNE (scikit-learn) places the sentences so that neighbours in z stay
neighbours on the plane; it keeps about seven times as many, at the price of distances between far points that
mean nothing and of no way back from the plane to z. `neighbour_preservation` is the measure the page and
`vaegen map` report; `place` puts a new code (a typed sentence, a sample) on the neighbour layout.
"""

from __future__ import annotations

import torch

from vaegen.core.errors import VaegenError

NEIGHBOURS = 10  # k of the measure: the share of a sentence's k nearest in z that are among its k nearest on the plane
# t-SNE's effective number of neighbours: of 5, 10 and 30, 30 kept the most on the shipped models' test splits
PERPLEXITY = 30.0
ROWS = 1024  # distances computed this many rows at a time: 5,000 sentences would need 100 MB at once


def neighbour_layout(codes: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """codes (N, L) -> their places (N, 2) by t-SNE (Barnes-Hut, started from the principal axes, so that the
    layout keeps their broad arrangement); the same codes and seed give the same layout."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise VaegenError("laying out a map by neighbours needs scikit-learn: pip install 'vaegen[serve]'") from None
    if len(codes) < 2:
        return torch.zeros(len(codes), 2)
    tsne = TSNE(n_components=2, perplexity=min(PERPLEXITY, (len(codes) - 1) / 3), init="pca", random_state=seed)
    return torch.from_numpy(tsne.fit_transform(codes.double().numpy())).float()


def nearest_others(points: torch.Tensor, k: int) -> torch.Tensor:
    """points (N, D) -> the indices (N, k) of each one's k nearest other points, nearest first."""
    found = []
    for start in range(0, len(points), ROWS):
        distances = torch.cdist(points[start:start + ROWS], points)  # (R, N)
        rows = torch.arange(len(distances))
        distances[rows, rows + start] = torch.inf  # a point is not its own neighbour
        found.append(distances.topk(k, largest=False).indices)
    return torch.cat(found)


def neighbour_preservation(codes: torch.Tensor, points: torch.Tensor, k: int = NEIGHBOURS) -> float:
    """codes (N, L) and their places (N, 2) -> the mean over sentences of the share of each one's k nearest in z
    that are among its k nearest on the plane: 1 when every neighbourhood is kept, about k / N for a random one."""
    k = min(k, len(codes) - 1)
    if k < 1:
        return 1.0
    in_z, on_plane = nearest_others(codes.float(), k), nearest_others(points.float(), k)
    kept = (in_z.unsqueeze(2) == on_plane.unsqueeze(1)).any(dim=2)  # (N, k): is each z neighbour on the plane too
    return float(kept.float().mean())


def place(z: torch.Tensor, codes: torch.Tensor, layout: torch.Tensor, k: int = NEIGHBOURS) -> torch.Tensor:
    """New codes z (M, L) -> places (M, 2) on a layout (N, 2) of `codes` (N, L): each at the mean place of its k
    nearest codes, weighted by the inverse of their distance in z, so that a map code lands on its own place.
    A shortcut, labelled as one: t-SNE has no map for new points, and this one puts a code among its neighbours
    without moving any of them."""
    if len(codes) == 0:
        return torch.zeros(len(z), 2)
    distances, indices = torch.cdist(z.float(), codes.float()).topk(min(k, len(codes)), largest=False)  # (M, k)
    weights = 1.0 / (distances + 1e-6)
    weights = weights / weights.sum(dim=1, keepdim=True)
    return (weights.unsqueeze(2) * layout[indices]).sum(dim=1)
