"""Decoding strategies, latent paths and prefix-weighted codes, on tiny models whose answers are known."""

import pytest
import torch

from vaegen.core.config import ModelConfig
from vaegen.core.data import collate
from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import BOS_ID, EOS_ID
from vaegen.generate.decoding import GREEDY, Strategy, beam_search, draw, filter_logits, generate, prefix_log_likelihood
from vaegen.generate.latent import linear_path, resample_by_likelihood, slerp_path

VOCAB = 30
MAX = 8


def decisive(seed: int = 0) -> SentenceVAE:
    """A random tiny model with sharpened logits, so that the most likely token is clear."""
    torch.manual_seed(seed)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=4, embed_dropout=0.0), VOCAB).eval()
    assert model.output is not None
    with torch.no_grad():
        model.output.weight.mul_(8.0)
        model.output.bias[EOS_ID] += 1.0  # sentences of a few tokens: some end, some are cut
    return model


def codes(n: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))


def teacher_forced(model: SentenceVAE, z: torch.Tensor, ids: list[int], ended: bool) -> float:
    """log p(ids (+ </s>) | z) read off one teacher-forced pass."""
    targets = ids + [EOS_ID] if ended else ids
    logits, _ = model.decode(torch.tensor([[BOS_ID, *targets[:-1]]]), z.unsqueeze(0), model.initial_state(z.unsqueeze(0)))
    return logits.log_softmax(-1)[0].gather(-1, torch.tensor(targets).unsqueeze(-1)).sum().item()


def test_sampling_respects_max_length_never_emits_special_ids_and_follows_the_seed() -> None:
    model, z = decisive(), codes(50)
    out = generate(model, z, MAX, Strategy(), torch.Generator().manual_seed(0)).ids
    assert len(out) == 50 and all(len(s) <= MAX for s in out) and all(t >= 4 for s in out for t in s)
    again = [generate(model, z, MAX, Strategy(), torch.Generator().manual_seed(s)).ids for s in (1, 1, 2)]
    assert again[0] == again[1] != again[2]


def test_logprobs_are_the_models_own_for_every_strategy() -> None:
    """Rows leave the batch as they end: each sentence's log-probability must still be its own."""
    model, z = decisive(), codes()
    for strategy in (GREEDY, Strategy(), Strategy(top_p=0.5, temperature=0.7)):
        decoded = generate(model, z, MAX, strategy, torch.Generator().manual_seed(0))
        for row, (ids, logprob) in enumerate(zip(decoded.ids, decoded.logprobs.tolist())):
            ended = len(ids) < MAX or logprob == pytest.approx(teacher_forced(model, z[row], ids, True), abs=1e-4)
            assert logprob == pytest.approx(teacher_forced(model, z[row], ids, ended), abs=1e-4)


def test_greedy_equals_beam_of_width_one_and_top_k_one() -> None:
    model, z = decisive(), codes()
    greedy = generate(model, z, MAX, GREEDY).ids
    assert generate(model, z, MAX, Strategy(beam=1)).ids == greedy
    assert generate(model, z, MAX, Strategy(top_k=1), torch.Generator().manual_seed(3)).ids == greedy


def test_lower_temperature_approaches_greedy() -> None:
    model, z = decisive(), codes(64)
    greedy = generate(model, z, MAX, GREEDY).ids

    def agreement(temperature: float) -> float:
        sampled = generate(model, z, MAX, Strategy(temperature=temperature), torch.Generator().manual_seed(0)).ids
        return sum(a == b for a, b in zip(sampled, greedy)) / len(greedy)

    shares = [agreement(t) for t in (1.0, 0.3, 0.1, 0.01, 0.0001)]
    assert shares == sorted(shares) and shares[0] < 0.5 and shares[-1] == 1.0


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = lambda p: torch.isfinite(filter_logits(logits, top_p=p))[0].nonzero().flatten().tolist()
    assert kept(0.5) == [0] and kept(0.79) == [0, 1] and kept(0.81) == [0, 1, 2] and kept(1.0) == [0, 1, 2, 3]
    assert kept(0.01) == [0]  # the most likely token always stays
    rows = torch.randn(200, 50, generator=torch.Generator().manual_seed(0)) * 2
    for p in (0.3, 0.9):
        keep = torch.isfinite(filter_logits(rows, top_p=p))
        probs = rows.softmax(-1)
        mass = (probs * keep).sum(-1)
        least = probs.masked_fill(~keep, 2.0).min(-1).values  # the least likely token kept
        assert (mass >= p - 1e-6).all() and ((mass - least < p) | (keep.sum(-1) == 1)).all()
        assert (probs.masked_fill(keep, 2.0).min(-1).values <= least + 1e-7).all() or keep.all()


def test_top_k_keeps_k_tokens() -> None:
    rows = torch.randn(20, 50, generator=torch.Generator().manual_seed(0))
    keep = torch.isfinite(filter_logits(rows, top_k=5))
    assert (keep.sum(-1) == 5).all() and torch.equal(keep, torch.zeros_like(keep).scatter(1, rows.topk(5).indices, True))


def test_beam_hypotheses_come_in_score_order_score_correctly_and_never_below_greedy() -> None:
    model, z = decisive(), codes()
    greedy = generate(model, z, MAX, GREEDY)
    for penalty in (0.0, 1.0):
        results = beam_search(model, z, MAX, width=4, length_penalty=penalty)
        for row, hypotheses in enumerate(results):
            scores = [h.score for h in hypotheses]
            assert scores == sorted(scores, reverse=True) and 1 <= len(hypotheses) <= 4
            g_ids, g_logprob = greedy.ids[row], greedy.logprobs[row].item()
            assert scores[0] >= g_logprob / (len(g_ids) + 1) ** penalty - 1e-6
            for h in hypotheses:
                ended = len(h.ids) < MAX or h.logprob == pytest.approx(teacher_forced(model, z[row], h.ids, True), abs=1e-4)
                assert h.logprob == pytest.approx(teacher_forced(model, z[row], h.ids, ended), abs=1e-4)
                assert h.score == pytest.approx(h.logprob / (len(h.ids) + 1) ** penalty)
    raw = beam_search(model, z, MAX, width=4, length_penalty=0.0)
    assert sum(r[0].logprob > g + 1e-6 for r, g in zip(raw, greedy.logprobs.tolist())) > 0  # the search finds better


def test_decoding_after_a_prefix_continues_it() -> None:
    model, z = decisive(), codes(4)
    prefix = [7, 8]
    decoded = generate(model, z, MAX, GREEDY, prefix=prefix)
    for row, ids in enumerate(decoded.ids):
        whole = teacher_forced(model, z[row], prefix + ids, len(ids) < MAX)
        assert decoded.logprobs[row].item() + prefix_log_likelihood(model, z[row : row + 1], prefix).item() == (
            pytest.approx(whole, abs=1e-4))


def test_paths_start_and_end_at_the_codes_and_slerp_keeps_norms_between_theirs() -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        a, b = torch.randn(16, generator=generator) * 0.5, torch.randn(16, generator=generator) * 2.0
        for path in (linear_path(a, b, 9), slerp_path(a, b, 9)):
            assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
        norms = slerp_path(a, b, 9).norm(dim=1)
        low, high = sorted((a.norm().item(), b.norm().item()))
        assert (norms >= low - 1e-5).all() and (norms <= high + 1e-5).all()
        assert linear_path(a, b, 9).norm(dim=1).min() < norms.min() + 1e-6  # the straight line dips lower
    a = torch.ones(4)
    assert torch.allclose(slerp_path(a, 3 * a, 3).norm(dim=1), torch.tensor([2.0, 4.0, 6.0]))  # parallel codes


def region_model() -> SentenceVAE:
    """A model in which codes with z > 0 make token A likely and codes with z < 0 token B."""
    model = SentenceVAE(ModelConfig(embed_dim=4, hidden_dim=4, latent_dim=1, embed_dropout=0.0,
                                    z_every_step=False), 8).eval()
    assert model.output is not None
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        assert model.latent_to_hidden is not None
        model.latent_to_hidden.weight[0, 0] = 5.0  # h0[0] = tanh(5 z); a zero GRU halves the state each step
        model.output.weight[5, 0], model.output.weight[6, 0] = 12.0, -12.0
    return model


def test_prefix_likelihood_ranks_the_codes_that_explain_the_prefix() -> None:
    model = region_model()
    pool = torch.randn(256, 1, generator=torch.Generator().manual_seed(0))
    likelihood = prefix_log_likelihood(model, pool, [5, 5])  # "A A": explained by z > 0
    assert likelihood[pool[:, 0] > 0.3].min() > likelihood[pool[:, 0] < -0.3].max()
    chosen = resample_by_likelihood(likelihood, 40, torch.Generator().manual_seed(1))
    assert (pool[chosen, 0] > 0).float().mean() > 0.95
    assert likelihood[chosen].tolist() == sorted(likelihood[chosen].tolist(), reverse=True)
    continued = generate(model, pool[chosen], 4, GREEDY, prefix=[5, 5]).ids
    assert all(ids[:1] == [5] for ids in continued)  # the chosen codes go on as the prefix began


def test_batched_decoding_matches_one_code_at_a_time() -> None:
    model, z = decisive(), codes(12)
    together = generate(model, z, MAX, GREEDY)
    alone = [generate(model, z[i : i + 1], MAX, GREEDY) for i in range(12)]
    assert together.ids == [a.ids[0] for a in alone]
    assert torch.allclose(together.logprobs, torch.cat([a.logprobs for a in alone]), atol=1e-4)
    beams = beam_search(model, z, MAX, width=3)
    assert [b[0].ids for b in beams] == [beam_search(model, z[i : i + 1], MAX, width=3)[0][0].ids for i in range(12)]
    assert collate([[4]]).tokens.shape == (1, 2)  # a one-token sentence and its </s>


def test_draw_follows_the_distribution_and_never_draws_a_zero() -> None:
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0]]).expand(200_000, -1)
    drawn = draw(probs, torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn, minlength=5).float() / drawn.numel()
    assert torch.allclose(counts, probs[0], atol=0.005) and counts[1] == counts[4] == 0
