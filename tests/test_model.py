"""The model's shapes, padding invariance, conditioning variants and step-by-step decoding."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from vaegen.core.config import ModelConfig
from vaegen.core.data import collate
from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import PAD_ID

VOCAB = 30


def tiny(**overrides: Any) -> SentenceVAE:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=4, embed_dropout=0.0, **overrides)
    return SentenceVAE(config, VOCAB).eval()


SENTENCES = [[5, 6, 7, 8, 9], [10], [11, 12, 13]]


@pytest.mark.parametrize("overrides", [
    {}, {"bidirectional": False}, {"encoder_layers": 2, "decoder_layers": 2},
    {"z_to_init": False}, {"z_every_step": False}, {"encoder_dim": 5, "encoder_layers": 2},
])
def test_forward_shapes(overrides: dict) -> None:
    model = tiny(**overrides)
    batch = collate(SENTENCES)
    out = model(batch.tokens, batch.lengths, batch.decoder_inputs, torch.randn(3, 4))
    assert out.hidden.shape == (3, 6, 12)
    assert model.decode(batch.decoder_inputs, out.z, model.initial_state(out.z))[0].shape == (3, 6, VOCAB)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (3, 4)


def test_encoder_dim_sets_the_encoder_width_alone() -> None:
    model = tiny(encoder_dim=5)
    assert model.encoder is not None and model.encoder.hidden_size == 5
    assert model.decoder.hidden_size == 12


def test_posterior_mean_is_independent_of_padding() -> None:
    model = tiny(encoder_layers=2)
    batch = collate(SENTENCES)
    mu = model.encode(batch.tokens, batch.lengths).mu
    for row, sentence in enumerate(SENTENCES):
        alone = collate([sentence])
        assert torch.allclose(model.encode(alone.tokens, alone.lengths).mu[0], mu[row], atol=1e-6)


def test_eps_none_uses_the_posterior_mean() -> None:
    model = tiny()
    batch = collate(SENTENCES)
    out = model(batch.tokens, batch.lengths, batch.decoder_inputs, None)
    assert torch.equal(out.z, out.mu)


@pytest.mark.parametrize("overrides", [{"z_to_init": False}, {"z_every_step": False}, {}])
def test_decoder_depends_on_z(overrides: dict) -> None:
    model = tiny(**overrides)
    inputs = collate(SENTENCES).decoder_inputs
    z = torch.randn(3, 4)
    first, _ = model.decode(inputs, z, model.initial_state(z))
    second, _ = model.decode(inputs, z + 1.0, model.initial_state(z + 1.0))
    assert not torch.allclose(first, second)


def test_stepwise_decoding_equals_teacher_forcing() -> None:
    model = tiny()
    inputs = collate(SENTENCES).decoder_inputs
    z = torch.randn(3, 4)
    whole, _ = model.decode(inputs, z, model.initial_state(z))
    state = model.initial_state(z)
    for t in range(inputs.size(1)):
        step, state = model.decode(inputs[:, t : t + 1], z, state)
        assert torch.allclose(step[:, 0], whole[:, t], atol=1e-5)


def test_embedding_dropout_reaches_the_decoder_alone() -> None:
    """The encoder must read the whole sentence; dropout regularises only the decoder's inputs."""
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=4, embed_dropout=0.5), VOCAB).train()
    batch = collate(SENTENCES)
    assert torch.equal(model.encode(batch.tokens, batch.lengths).mu, model.encode(batch.tokens, batch.lengths).mu)
    z = torch.zeros(3, 4)
    first, _ = model.decoder_states(batch.decoder_inputs, z, model.initial_state(z))
    second, _ = model.decoder_states(batch.decoder_inputs, z, model.initial_state(z))
    assert not torch.equal(first, second)


@pytest.mark.parametrize("tie", [False, True])
def test_token_nll_sums_the_cross_entropy_of_real_tokens_per_sentence(tie: bool) -> None:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=8, hidden_dim=8, latent_dim=4, embed_dropout=0.0, tie_embeddings=tie)
    model = SentenceVAE(config, VOCAB).eval()
    batch = collate(SENTENCES)
    out = model(batch.tokens, batch.lengths, batch.decoder_inputs, None)
    logits = model.decode(batch.decoder_inputs, out.z, model.initial_state(out.z))[0]  # (B, T, V)
    per_token = F.cross_entropy(logits.transpose(1, 2), batch.tokens, ignore_index=PAD_ID, reduction="none")
    assert torch.allclose(model.token_nll(out.hidden, batch.tokens), per_token.sum(dim=1), atol=1e-5)


def test_a_form_aware_model_scores_rhyme_slots_by_the_group_of_the_first_rhyme() -> None:
    """At a step whose form names a rhyme to follow, the learnt rhyme columns add that group's scores to the
    logits, and nowhere else (the group's input embedding, which would move every later step, is zeroed
    here); `token_nll` scores the same logits as `decode`."""
    model = tiny(form_dim=4)
    classes = torch.full((VOCAB,), -1)
    classes[5:10], classes[10:15] = 0, 1  # two rhyme classes: tokens 5-9 and 10-14
    model.set_rhyme_groups(classes)
    assert model.rhyme_output is not None
    assert model.form_embedding is not None
    with torch.no_grad():
        model.rhyme_output.normal_()
        model.form_embedding.rhyme.weight.zero_()
    batch = collate(SENTENCES)
    form = torch.zeros(*batch.decoder_inputs.shape, 4, dtype=torch.long)
    form[0, 3, 3], form[2, 2, 3] = 7, 12  # row 0 step 3 follows token 7's rhyme, row 2 step 2 token 12's
    out = model(batch.tokens, batch.lengths, batch.decoder_inputs, None, form_ids=form)
    z = out.z
    with_rhyme, _ = model.decode(batch.decoder_inputs, z, model.initial_state(z), form)
    plain = form.clone()
    plain[..., 3] = 0
    without, _ = model.decode(batch.decoder_inputs, z, model.initial_state(z), plain)
    added = with_rhyme - without
    assert (added.abs().amax(dim=-1) > 1e-6).nonzero().tolist() == [[0, 3], [2, 2]]
    assert torch.allclose(added[0, 3], model.rhyme_output[:, 0]) and torch.allclose(added[2, 2], model.rhyme_output[:, 1])
    per_token = F.cross_entropy(with_rhyme.transpose(1, 2), batch.tokens, ignore_index=PAD_ID, reduction="none")
    assert torch.allclose(model.token_nll(out.hidden, batch.tokens), per_token.sum(dim=1), atol=1e-5)


def test_too_many_rhyme_classes_are_refused() -> None:
    with pytest.raises(ValueError, match="rhyme classes"):
        tiny(form_dim=4).set_rhyme_groups(torch.arange(VOCAB) * 2)
