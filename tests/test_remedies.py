"""Remedies for posterior collapse: free bits, BN-VAE, tied embeddings, output dropout, pretraining + reset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import TINY
from test_resume import train_losses

from vaegen.cli import run
from vaegen.core.config import ConfigError, ModelConfig, load_config
from vaegen.core.model import SentenceVAE
from vaegen.core.objectives import encoder_converged, free_bits, kl_per_dimension
from vaegen.core.tokenizer import PAD_ID
from vaegen.train.metrics_log import metrics_path

VOCAB = 30


def test_free_bits_off_is_the_plain_kl() -> None:
    kl = torch.rand(4, 3)
    assert torch.equal(free_bits(kl, 0.0), kl.sum(-1))


def test_free_bits_per_dimension_judges_the_batch_mean() -> None:
    # dimension 0: batch mean 0.25 < 0.5, free; dimension 1: mean 1.5 > 0.5, paid in full
    kl = torch.tensor([[0.0, 1.0], [0.5, 2.0]], requires_grad=True)
    term = free_bits(kl, 0.5)
    assert term.tolist() == pytest.approx([0.5 + 1.0, 0.5 + 2.0])
    assert term.mean().item() == pytest.approx(max(0.5, 0.25) + max(0.5, 1.5))
    term.sum().backward()
    assert kl.grad is not None and kl.grad.tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_free_bits_per_example_judges_each_entry() -> None:
    kl = torch.tensor([[0.0, 1.0], [0.7, 0.2]], requires_grad=True)
    term = free_bits(kl, 0.5, per_example=True)
    assert term.tolist() == pytest.approx([0.5 + 1.0, 0.7 + 0.5])
    term.sum().backward()
    assert kl.grad is not None and kl.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_free_bits_never_go_below_the_target() -> None:
    torch.manual_seed(0)
    kl = kl_per_dimension(torch.randn(16, 5) * 0.1, torch.randn(16, 5) * 0.1)
    for per_example in (False, True):
        assert (free_bits(kl, 0.3, per_example) >= 5 * 0.3 - 1e-6).all()
        assert (free_bits(kl, 0.3, per_example) >= kl.sum(-1) - 1e-6).all()


def tiny(**overrides: object) -> SentenceVAE:
    torch.manual_seed(0)
    values: dict = {"embed_dim": 8, "hidden_dim": 8, "latent_dim": 4, "embed_dropout": 0.0, **overrides}
    return SentenceVAE(ModelConfig(**values), VOCAB)


def encode_batch(model: SentenceVAE, batch: int = 64):
    tokens = torch.randint(4, VOCAB, (batch, 6))
    return model.encode(tokens, torch.full((batch,), 6))


def test_bn_vae_fixes_the_scale_of_the_posterior_means() -> None:
    gamma = 0.6
    model = tiny(bn_gamma=gamma).train()
    mu, logvar = encode_batch(model)
    assert torch.allclose(mu.mean(0), torch.zeros(4), atol=1e-5)  # the learnt shift starts at 0
    assert torch.allclose(mu.var(0, unbiased=False), torch.full((4,), gamma**2), rtol=1e-3)
    # E[KL] over the batch is at least latent_dim * gamma^2 / 2, whatever the variances
    assert kl_per_dimension(mu, logvar).sum(-1).mean().item() >= 4 * gamma**2 / 2 - 1e-4
    mu.sum().backward()
    assert model.mu_shift is not None and model.mu_shift.grad is not None


def test_bn_vae_in_eval_mode_uses_running_statistics() -> None:
    model = tiny(bn_gamma=0.6).eval()
    tokens = torch.randint(4, VOCAB, (1, 6))
    mu = model.encode(tokens, torch.tensor([6])).mu  # a batch of one works once statistics are frozen
    assert mu.shape == (1, 4)


def test_tied_embeddings_start_at_the_scale_of_an_untied_output_layer() -> None:
    """With the embedding's N(0, 1) start the first softmax is nearly one-hot and training stalls."""
    torch.manual_seed(0)
    tied, untied = (SentenceVAE(ModelConfig(embed_dim=64, hidden_dim=64, latent_dim=4, embed_dropout=0.0,
                                            tie_embeddings=t), 500) for t in (True, False))
    assert tied.output is not None and untied.output is not None
    assert tied.output.weight.std().item() == pytest.approx(untied.output.weight.std().item(), rel=0.1)
    assert tied.embedding.weight[PAD_ID].abs().sum() == 0


def test_tied_embeddings_share_one_matrix_and_need_equal_sizes() -> None:
    model = tiny(tie_embeddings=True)
    assert model.output is not None and model.output.weight is model.embedding.weight
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in tiny().parameters())
    with pytest.raises(ConfigError, match="tie_embeddings"):
        load_config(TINY, ["model.tie_embeddings=true", "model.embed_dim=16", "model.hidden_dim=32"])


def test_output_dropout_acts_in_training_only() -> None:
    model = tiny(output_dropout=0.5)
    inputs, z = torch.randint(4, VOCAB, (3, 5)), torch.zeros(3, 4)
    first = model.train().decoder_states(inputs, z, model.initial_state(z))[0]
    second = model.decoder_states(inputs, z, model.initial_state(z))[0]
    assert not torch.equal(first, second)
    model.eval()
    assert torch.equal(model.decoder_states(inputs, z, model.initial_state(z))[0],
                       model.decoder_states(inputs, z, model.initial_state(z))[0])


def test_weight_drop_masks_the_recurrent_weights_in_training_only() -> None:
    model = tiny(weight_drop=0.5, z_every_step=False)
    inputs, z = torch.randint(4, VOCAB, (3, 5)), torch.randn(3, 4)
    state = model.initial_state(z)
    weight = model.decoder.get_parameter("weight_hh_l0")
    before = weight.detach().clone()
    torch.manual_seed(1)
    dropped = model.train().decoder_states(inputs, z, state)[0]
    torch.manual_seed(1)
    mask = torch.nn.functional.dropout(torch.ones_like(weight), 0.5)  # the mask that call drew
    reference = torch.nn.GRU(8, 8, batch_first=True)
    reference.load_state_dict(model.decoder.state_dict())
    with torch.no_grad():
        reference.get_parameter("weight_hh_l0").mul_(mask)
    expected = reference(model.embedding(inputs), state)[0]
    torch.testing.assert_close(dropped, expected)
    dropped.sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0  # the gradient reaches the parameter...
    assert (weight.grad[mask == 0] == 0).all()  # ...through the mask
    assert torch.equal(weight, before)  # the parameter itself is never masked
    model.eval()
    full = model.decoder_states(inputs, z, state)[0]
    torch.testing.assert_close(full, model.decoder(model.embedding(inputs), state)[0])
    with pytest.raises(ConfigError, match="weight_drop"):
        load_config(TINY, ["model.weight_drop=1.0"])


@pytest.mark.parametrize("tie", [False, True])
def test_reset_decoder_keeps_the_encoder(tie: bool) -> None:
    model = tiny(tie_embeddings=tie)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    reset = model.reset_decoder()
    after = dict(model.named_parameters())
    reset_ids = {id(p) for p in reset}
    for name, parameter in after.items():
        changed = not torch.equal(before[name], parameter)
        assert changed == (id(parameter) in reset_ids), name
        assert changed == name.startswith(("decoder.", "latent_to_hidden.", "output.")), name
    assert model.output is not None
    assert model.output.weight is model.embedding.weight if tie else model.output.weight is not model.embedding.weight


def betas(out: Path) -> dict[int, float]:
    lines = metrics_path(out).read_text(encoding="utf-8").splitlines()
    return {r["step"]: r["beta"] for r in map(json.loads, lines) if r["kind"] == "train"}


def test_pretraining_holds_beta_at_zero_then_resets_and_resumes_exactly(english_corpus: Path, tmp_path: Path,
                                                                          capsys) -> None:
    # 48 batches per epoch: the first epoch is the autoencoder's, the reset comes at step 48
    args = ["--config", str(TINY), "--no-progress", "--set", "train.log_every=1", "--set", "train.epochs=3",
            "--set", "train.pretrain_epochs=1", "--set", "train.free_bits=0.1", "--set", "anneal.schedule=linear",
            "--set", "anneal.warmup_steps=10"]
    whole, split = tmp_path / "whole.pt", tmp_path / "split.pt"
    assert run(["train", str(english_corpus), "--out", str(whole), "--max-steps", "60", *args]) == 0
    assert "decoder reset" in capsys.readouterr().err
    beta = betas(whole)
    assert all(beta[s] == 0.0 for s in range(1, 49)) and beta[49] == 0.0 and beta[54] == pytest.approx(0.5)
    assert run(["train", str(english_corpus), "--out", str(split), "--max-steps", "48", *args]) == 0
    assert run(["train", str(english_corpus), "--out", str(split), "--no-progress", "--max-steps", "60",
                "--resume"]) == 0
    assert train_losses(split) == train_losses(whole)


def test_kl_target_is_what_training_pays_below_it(english_corpus: Path, tmp_path: Path) -> None:
    # a target far above any KL the tiny model reaches: every step pays exactly beta * target for its code
    out = tmp_path / "vae.pt"
    assert run(["train", str(english_corpus), "--out", str(out), "--config", str(TINY), "--no-progress",
                "--max-steps", "6", "--set", "train.log_every=1", "--set", "train.kl_target=1000",
                "--set", "anneal.schedule=constant"]) == 0
    train = [r for r in records(out) if r["kind"] == "train"]
    assert len(train) == 6 and all(r["kl"] < 1000 and r["beta"] == 1.0 for r in train)
    for r in train:
        assert r["loss"] == pytest.approx(r["rec"] + 1000, rel=1e-4)


def test_encoder_loop_stops_when_a_window_of_losses_stops_falling() -> None:
    falling = [10.0 - 0.1 * i for i in range(45)]
    assert not any(encoder_converged(falling[:n]) for n in range(46))
    worse = falling[:30] + [9.0] * 15  # the third window's mean, 9.0, is above the second's, 7.8
    assert not encoder_converged(worse[:44]) and encoder_converged(worse)
    assert not encoder_converged([1.0] * 29) and encoder_converged([1.0] * 30)  # two windows at least


def test_encoder_parameters_are_the_encoders_alone() -> None:
    model = tiny(bn_gamma=0.5)
    names = {name for name, p in model.named_parameters() if any(p is q for q in model.encoder_parameters())}
    assert names == {name for name, _ in model.named_parameters() if name.startswith(("encoder.", "to_posterior."))} | {
        "mu_shift"}
    assert tiny(latent_dim=0).encoder_parameters() == []


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in metrics_path(out).read_text(encoding="utf-8").splitlines()]


def test_aggressive_phase_updates_the_encoder_first_then_ends_and_resumes_exactly(english_corpus: Path,
                                                                                    tmp_path: Path, capsys) -> None:
    args = ["--config", str(TINY), "--no-progress", "--set", "train.log_every=1", "--set", "train.epochs=3",
            "--set", "train.batch_size=64", "--set", "train.aggressive_epochs=2"]
    whole, split = tmp_path / "whole.pt", tmp_path / "split.pt"
    assert run(["train", str(english_corpus), "--out", str(whole), *args]) == 0
    assert "aggressive encoder updates end after epoch" in capsys.readouterr().err
    train = [r for r in records(whole) if r["kind"] == "train"]
    first = [r for r in train if r["epoch"] == 1]
    assert first and all(30 <= r["encoder_steps"] <= 100 for r in first)  # two windows of 15 at least
    assert not any("encoder_steps" in r for r in train if r["epoch"] == 3)
    assert all(math.isfinite(r["mi"]) for r in records(whole) if r["kind"] == "valid")  # logged at each validation
    assert run(["train", str(english_corpus), "--out", str(split), "--max-steps", str(len(first)), *args]) == 0
    assert run(["train", str(english_corpus), "--out", str(split), "--no-progress", "--resume",
                "--set", "train.max_steps=0"]) == 0
    assert train_losses(split) == train_losses(whole)


def test_refinement_moves_the_encoder_alone_at_beta_one_and_can_follow_a_finished_run(english_corpus: Path,
                                                                                       tmp_path: Path, capsys) -> None:
    args = ["--config", str(TINY), "--no-progress", "--set", "train.log_every=1", "--set", "train.epochs=2",
            "--set", "train.free_bits=0.5", "--set", "train.lr_schedule=linear"]
    planned, added = tmp_path / "planned.pt", tmp_path / "added.pt"
    assert run(["train", str(english_corpus), "--out", str(planned), *args, "--set", "train.refine_epochs=1"]) == 0
    assert "refinement epoch 1/1" in capsys.readouterr().err
    assert run(["train", str(english_corpus), "--out", str(added), *args]) == 0
    before = torch.load(added, weights_only=True)["train_state"]["resume"]["model"]
    assert run(["train", str(english_corpus), "--out", str(added), "--no-progress", "--resume",
                "--set", "train.refine_epochs=1"]) == 0
    assert train_losses(added) == train_losses(planned)  # the same run either way
    state = torch.load(added, weights_only=True)["train_state"]
    encoder = {name for name, _ in tiny().named_parameters() if name.startswith(("encoder.", "to_posterior."))}
    for name, tensor in state["resume"]["model"].items():
        assert torch.equal(tensor, before[name]) == (name not in encoder), name
    train = [r for r in records(added) if r["kind"] == "train"]
    assert {r["beta"] for r in train if r["epoch"] == 3} == {1.0}
    valid = {r["epoch"]: r["elbo"] for r in records(added) if r["kind"] == "valid"}
    assert valid[3] < valid[2]  # q fitted to the decoder under the evaluated objective: a tighter bound
    assert state["epoch"] == 3


def test_refinement_needs_a_latent_code() -> None:
    with pytest.raises(ConfigError, match="refine_epochs needs a latent code"):
        load_config(TINY, ["model.latent_dim=0", "train.refine_epochs=1"])
