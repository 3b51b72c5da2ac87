"""Pictures of a training run from its metrics log, for `vaegen plot` (matplotlib is an optional extra).

Three panels: the training NLL and KL per sentence with beta on a second axis (where posterior
collapse shows as KL falling towards 0 while beta rises), the validation curves at beta = 1, and the
posterior means of some lines projected on their two principal axes, coloured by length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaegen.core.errors import VaegenError
from vaegen.core.files import write_atomically
from vaegen.core.metrics import principal_axes
from vaegen.generate.generator import SentenceGenerator
from vaegen.train import metrics_log


def read_log(path: Path) -> list[dict[str, Any]]:
    try:
        return metrics_log.read(path)
    except UnicodeDecodeError as exc:
        raise VaegenError(f"{path} is not a vaegen metrics log ({exc}); it is written by `vaegen train`")


def draw_run(log: Path, model: SentenceGenerator | None, lines: list[str] | None, out: Path,
             tunes: list[str] | None = None) -> None:
    """Write the PNG at `out` (atomically); the projection panel needs a model with a latent code and lines
    (and, for a model trained on tunes, the tune of each line)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VaegenError("vaegen plot needs matplotlib; install it with: pip install 'vaegen[plot]'")
    records = read_log(log)
    train = [r for r in records if r["kind"] == "train"]
    valid = [r for r in records if r["kind"] == "valid"]
    if not train and not valid:
        raise VaegenError(f"{log} holds no training or validation records yet; plot after some training")
    project = model is not None and lines is not None and model.latent_dim > 0
    fig, axes = plt.subplots(1, 3 if project else 2, figsize=(15 if project else 10, 4.2))

    ax = axes[0]
    steps = [r["step"] for r in train]
    ax.plot(steps, [r["rec"] for r in train], label="NLL (reconstruction)", color="tab:blue")
    ax.plot(steps, [r["kl"] for r in train], label="KL", color="tab:red")
    ax.set(title="training (per sentence)", xlabel="step", ylabel="nats")
    beta_axis = ax.twinx()
    beta_axis.plot(steps, [r["beta"] for r in train], label="beta", color="tab:gray", linestyle="--")
    beta_axis.set(ylabel="beta", ylim=(0, max([1.0, *(r["beta"] for r in train)]) * 1.05))
    handles = ax.get_legend_handles_labels()[0] + beta_axis.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center right")

    ax = axes[1]
    steps = [r["step"] for r in valid]
    for key, label, color in (("elbo", "-ELBO", "black"), ("rec", "NLL (reconstruction)", "tab:blue"),
                              ("kl", "KL", "tab:red")):
        ax.plot(steps, [r[key] for r in valid], marker="o", label=label, color=color)
    ax.set(title="validation at beta = 1 (per sentence)", xlabel="step", ylabel="nats")
    ax.legend()

    if project:
        assert model is not None and lines is not None
        mu = model.encode(lines, tunes).mu.double().cpu()
        mean, directions, _ = principal_axes(mu)
        xy = ((mu - mean) @ directions.T).float()
        lengths = [len(ids) for ids in model.tokenizer.encode(lines)]
        ax = axes[2]
        dots = ax.scatter(xy[:, 0], xy[:, 1], c=lengths, s=4, cmap="viridis", alpha=0.7)
        fig.colorbar(dots, ax=ax, label="length in tokens")
        ax.set(title=f"posterior means of {len(lines):,} lines (2 principal axes)", xlabel="axis 1", ylabel="axis 2")
    fig.tight_layout()
    write_atomically(out, lambda handle: fig.savefig(handle, format="png", dpi=110))
    plt.close(fig)
