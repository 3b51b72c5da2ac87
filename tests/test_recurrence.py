"""The GRU with its backward written out (vaegen.core.recurrence) is torch's GRU: the same outputs, final states and
gradients, in float64, for the encoder's packed reading (both directions, sentences of different lengths), the
decoder's reading from a given state, two layers, and swapped-in weights (weight drop)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from vaegen.core.recurrence import gru

LENGTHS = torch.tensor([6, 2, 4])


def grads(value: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(value, inputs, retain_graph=True))


@pytest.mark.parametrize("layers", [1, 2])
def test_a_bidirectional_reading_to_each_sentences_end_is_the_packed_one(layers: int) -> None:
    torch.manual_seed(0)
    module = nn.GRU(5, 7, layers, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    _, final = gru(module, x, lengths=LENGTHS)
    _, expected = module(pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False))
    assert torch.allclose(final, expected, atol=1e-12)
    weight = torch.randn_like(final)  # a loss that reads every final state differently
    inputs = [x, *module.parameters()]
    for mine, theirs in zip(grads((final * weight).sum(), inputs), grads((expected * weight).sum(), inputs)):
        assert torch.allclose(mine, theirs, atol=1e-12)


def test_a_reading_from_a_given_state_matches_in_outputs_states_and_gradients() -> None:
    torch.manual_seed(1)
    module = nn.GRU(5, 7, batch_first=True).double()
    x = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 3, 7, dtype=torch.float64, requires_grad=True)
    out, final = gru(module, x, h0)
    expected_out, expected_final = module(x, h0)
    assert torch.allclose(out, expected_out, atol=1e-12) and torch.allclose(final, expected_final, atol=1e-12)
    weight = torch.randn_like(out)
    inputs = [x, h0, *module.parameters()]
    for mine, theirs in zip(grads((out * weight).sum() + final.sum(), inputs),
                            grads((expected_out * weight).sum() + expected_final.sum(), inputs)):
        assert torch.allclose(mine, theirs, atol=1e-12)


def test_swapped_in_weights_are_read_and_get_the_gradient() -> None:
    torch.manual_seed(2)
    module = nn.GRU(5, 7, batch_first=True).double()
    x = torch.randn(3, 6, 5, dtype=torch.float64)
    base = module.get_parameter("weight_hh_l0").detach().clone().requires_grad_()
    dropped = {"weight_hh_l0": base * (torch.rand_like(base) > 0.5) * 2}
    out, _ = gru(module, x, weights=dropped)
    expected, _ = torch.func.functional_call(module, dropped, (x,))
    assert torch.allclose(out, expected, atol=1e-12)
    mine, = grads(out.sum(), [base])
    theirs, = grads(expected.sum(), [base])
    assert torch.allclose(mine, theirs, atol=1e-12)


def test_bfloat16_products_stay_close_and_inference_is_the_module_itself() -> None:
    torch.manual_seed(4)
    module = nn.GRU(16, 32, batch_first=True, bidirectional=True)
    x = torch.randn(4, 9, 16)
    lengths = torch.tensor([9, 3, 5, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, low = gru(module, x, lengths=lengths)
    _, exact = gru(module, x, lengths=lengths)
    assert low.dtype == torch.float32 and (low - exact).abs().max() < 0.05
    with torch.no_grad():
        _, inferred = gru(module, x, lengths=lengths)
        _, packed = module(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    assert torch.equal(inferred, packed)
