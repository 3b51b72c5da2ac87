"""The adaptive output layer (model.output_head > 0) is exact: on a trained tiny model its distribution sums to 1
at every step, and the training NLL, the importance-weighted NLL, greedy decoding and beam search all agree with a
brute-force computation from the full log-probabilities it gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY, english_lines

from vaegen.core import checkpoint
from vaegen.core.config import ModelConfig, load_config
from vaegen.core.data import collate, split_valid
from vaegen.core.errors import ConfigError, TrainingError
from vaegen.core.model import ADAPTIVE_FROM, DEFAULT_HEAD, RHYME_GROUPS, SentenceVAE, adaptive_cutoffs
from vaegen.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from vaegen.eval.report import score_corpus
from vaegen.generate.decoding import GREEDY, beam_search, generate
from vaegen.train.loop import fit

HEAD = 20  # of the tiny model's 200 pieces: a head, then clusters from rank 20 and 80
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> checkpoint.Loaded:
    config = load_config(TINY, [f"model.output_head={HEAD}", "train.epochs=1"])
    train, valid = split_valid(english_lines(), config.data.valid_fraction, config.data.min_valid_lines)
    out = tmp_path_factory.mktemp("adaptive") / "adaptive.pt"
    fit(config, train, valid, out, CPU, progress=False, log=lambda _: None)
    return checkpoint.load(out)


def full_log_probs(model: SentenceVAE, batch_tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(B, T, V): log p(. | z, tokens before) at every step, read by teacher forcing."""
    inputs = torch.cat([torch.full_like(batch_tokens[:, :1], BOS_ID), batch_tokens[:, :-1]], dim=1)
    logp, _ = model.decode(inputs, z, model.initial_state(z))
    return logp


def brute_nll(model: SentenceVAE, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Summed NLL per sentence (B,) picked from the full log-probabilities."""
    picked = full_log_probs(model, tokens, z).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return -(picked * (tokens != PAD_ID)).sum(dim=1)


def test_the_clusters_grow_fourfold_to_the_vocabulary() -> None:
    assert adaptive_cutoffs(20, 200) == [20, 80] and adaptive_cutoffs(1000, 10_002) == [1000, 4000]
    with pytest.raises(ValueError, match="output_head"):
        adaptive_cutoffs(200, 200)


def test_the_head_holds_the_most_frequent_tokens(trained: checkpoint.Loaded) -> None:
    model, tokenizer = trained.model, trained.tokenizer
    counts = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
    for ids in tokenizer.encode(english_lines()):
        counts += torch.bincount(torch.tensor(ids + [EOS_ID]), minlength=tokenizer.vocab_size)
    assert sorted(model.output_rank.tolist()) == list(range(tokenizer.vocab_size))  # a permutation
    assert model.output_rank[EOS_ID] < HEAD and model.output_rank[int(counts.argmax())] < HEAD
    assert model.output_rank[PAD_ID] >= HEAD  # never a target


def test_the_distribution_sums_to_one_and_training_scores_it(trained: checkpoint.Loaded) -> None:
    model, tokenizer = trained.model, trained.tokenizer
    batch = collate(tokenizer.encode(english_lines(12, seed=5)))
    z = torch.randn(len(batch.tokens), model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logp = full_log_probs(model, batch.tokens, z)
        assert torch.allclose(logp.exp().sum(dim=-1), torch.ones(logp.shape[:2]), atol=1e-5)
        hidden, _ = model.decoder_states(batch.decoder_inputs, z, model.initial_state(z))
        assert torch.allclose(model.token_nll(hidden, batch.tokens), brute_nll(model, batch.tokens, z), atol=1e-4)


def test_the_importance_weighted_nll_is_the_brute_force_one(trained: checkpoint.Loaded,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    model, tokenizer = trained.model, trained.tokenizer
    ids = tokenizer.encode(english_lines(10, seed=7))
    scored = score_corpus(model, ids, 8, CPU, seed=3)

    def from_full_log_probs(hidden: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype = torch.float32):
        """The layer applied to every position, then the targets' log-probabilities picked."""
        logp = model.adaptive_output.log_prob(hidden.reshape(-1, hidden.size(-1)))  # type: ignore[union-attr]
        logp = logp.index_select(1, model.output_rank).view(*targets.shape, -1)
        return -(logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * (targets != PAD_ID)).sum(dim=1)

    monkeypatch.setattr(model, "token_nll", from_full_log_probs)
    brute = score_corpus(model, ids, 8, CPU, seed=3)
    assert torch.allclose(scored.nll, brute.nll, atol=1e-4) and torch.allclose(scored.rec, brute.rec, atol=1e-4)


def test_greedy_and_beam_follow_the_full_log_probabilities(trained: checkpoint.Loaded) -> None:
    model = trained.model
    z = torch.randn(6, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    greedy = generate(model, z, 20, GREEDY)
    with torch.no_grad():
        inputs, state = torch.full((6, 1), BOS_ID), model.initial_state(z)
        expected: list[list[int]] = [[] for _ in range(6)]
        for _ in range(21):  # the argmax of the full log-probabilities, step by step, never a special token
            logp, state = model.decode(inputs, z, state)
            logp = logp[:, -1].clone()
            logp[:, [PAD_ID, BOS_ID, UNK_ID]] = float("-inf")
            inputs = logp.argmax(dim=-1, keepdim=True)
            for row, token in enumerate(inputs.squeeze(1).tolist()):
                if len(expected[row]) == 0 or expected[row][-1] != EOS_ID:
                    expected[row].append(token)
    assert greedy.ids == [row[: row.index(EOS_ID)] if EOS_ID in row else row[:20] for row in expected]
    for code, hypotheses in enumerate(beam_search(model, z, 20, 3)):
        best = hypotheses[0]
        if len(best.ids) < 20:  # ended by </s>: its log-probability is that of its tokens and the end
            tokens = torch.tensor([best.ids + [EOS_ID]])
            with torch.no_grad():
                brute = -brute_nll(model, tokens, z[code : code + 1])
            assert best.logprob == pytest.approx(float(brute), abs=1e-4)


def test_the_adaptive_layer_round_trips_and_refuses_what_it_cannot_be(trained: checkpoint.Loaded,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "again.pt"
    checkpoint.save(out, trained.config, trained.tokenizer, trained.model.state_dict(), {})
    again = checkpoint.load(out)
    assert torch.equal(again.model.output_rank, trained.model.output_rank)
    tokens = torch.tensor([[5, 6, 7, EOS_ID]])
    z = torch.zeros(1, trained.config.model.latent_dim)
    with torch.no_grad():
        assert torch.equal(full_log_probs(again.model, tokens, z), full_log_probs(trained.model, tokens, z))
    for overrides, message in ((["model.output_head=-2"], "must be -1"),
                               (["model.output_head=10", "model.tie_embeddings=true"], "tie_embeddings = false")):
        with pytest.raises(ConfigError, match=message):
            load_config(TINY, overrides)
    config = load_config(TINY, ["model.output_head=500"])
    train, valid = split_valid(english_lines(), config.data.valid_fraction, config.data.min_valid_lines)
    with pytest.raises(TrainingError, match="not below the vocabulary"):
        fit(config, train, valid, tmp_path / "too-wide.pt", CPU, progress=False, log=lambda _: None)
    assert SentenceVAE(ModelConfig(output_head=0), 50).adaptive_output is None


def test_the_default_head_is_chosen_by_the_vocabulary_and_saved_as_chosen(trained: checkpoint.Loaded,
                                                                          tmp_path: Path) -> None:
    """Without model.output_head a large vocabulary gets an adaptive head, a small one or a tied one a full softmax;
    a trained model's checkpoint holds the head it got, and a file from before the adaptive layer (no output_head
    in its config) still reads as the full softmax it was."""
    assert SentenceVAE(ModelConfig(), ADAPTIVE_FROM).adaptive_output is not None
    assert SentenceVAE(ModelConfig(), ADAPTIVE_FROM).adaptive_output.shortlist_size == DEFAULT_HEAD  # type: ignore[union-attr]
    assert SentenceVAE(ModelConfig(), ADAPTIVE_FROM - 1).adaptive_output is None
    tied = ModelConfig(embed_dim=256, hidden_dim=256, tie_embeddings=True)
    assert SentenceVAE(tied, ADAPTIVE_FROM).adaptive_output is None
    config = load_config(TINY, ["train.epochs=1"])
    assert config.model.output_head == -1
    train, valid = split_valid(english_lines(), config.data.valid_fraction, config.data.min_valid_lines)
    fit(config, train, valid, tmp_path / "default.pt", CPU, progress=False, log=lambda _: None)
    assert checkpoint.load(tmp_path / "default.pt").config.model.output_head == 0  # 200 pieces: a full softmax
    payload = torch.load(tmp_path / "default.pt", weights_only=True)
    del payload["config"]["model"]["output_head"]  # as written before the adaptive layer existed
    assert checkpoint.saved_config(payload, Path("old")).model.output_head == 0  # not the default, -1
    torch.save(payload, tmp_path / "old.pt")
    old, new = checkpoint.load(tmp_path / "old.pt"), checkpoint.load(tmp_path / "default.pt")
    tokens, z = torch.tensor([[5, 6, 7, EOS_ID]]), torch.zeros(1, config.model.latent_dim)
    with torch.no_grad():
        assert torch.equal(full_log_probs(old.model, tokens, z), full_log_probs(new.model, tokens, z))


def test_a_form_aware_adaptive_layer_reads_the_rhyme_and_stays_normalised() -> None:
    """A form-aware model's rhyme one-hot is read by the adaptive layer as more features: the distribution moves at
    the steps that follow a rhyme and nowhere else, sums to 1 there, and training scores what decoding gives."""
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=8, latent_dim=4, form_dim=4, output_head=20,
                                    embed_dropout=0.0), 200).eval()
    assert model.rhyme_output is None and model.adaptive_output is not None
    assert model.adaptive_output.in_features == 8 + RHYME_GROUPS - 1
    classes = torch.full((200,), -1)
    classes[5:10], classes[10:15] = 0, 1
    model.set_rhyme_groups(classes)
    assert model.form_embedding is not None
    with torch.no_grad():
        model.form_embedding.rhyme.weight.zero_()  # the rhyme reaches the output layer alone
    batch = collate([[5, 6, 7], [8, 9, 10, 11], [12, 13]])
    form = torch.zeros(*batch.decoder_inputs.shape, 4, dtype=torch.long)
    form[0, 3, 3], form[2, 2, 3] = 7, 12
    z = torch.randn(3, 4)
    with torch.no_grad():
        with_rhyme, _ = model.decode(batch.decoder_inputs, z, model.initial_state(z), form)
        plain = form.clone()
        plain[..., 3] = 0
        without, _ = model.decode(batch.decoder_inputs, z, model.initial_state(z), plain)
        moved = (with_rhyme - without).abs().amax(dim=-1) > 1e-6
        assert moved.nonzero().tolist() == [[0, 3], [2, 2]]
        assert torch.allclose(with_rhyme.exp().sum(dim=-1), torch.ones(with_rhyme.shape[:2]), atol=1e-5)
        hidden, _ = model.decoder_states(batch.decoder_inputs, z, model.initial_state(z), form)
        picked = with_rhyme.gather(-1, batch.tokens.unsqueeze(-1)).squeeze(-1)
        brute = -(picked * (batch.tokens != PAD_ID)).sum(dim=1)
        assert torch.allclose(model.token_nll(hidden, batch.tokens), brute, atol=1e-4)
