"""The GRU layers of the model on the CPU, with a backward pass written out.

torch's CPU GRU runs one small autograd graph per time step: its backward accumulates the recurrent weights'
gradient step by step and zero-fills a buffer for each, which took a third of a whole-ci training step
(`bench/profile_step.py`). Here the forward pass keeps each step's gates, and the backward pass loops over the
steps for the hidden state's gradient alone, then forms every weight's gradient with one matrix product over all
steps. The matrix products run in `dtype` (bfloat16 where training asks for it), the gates in float32.

A mask (B, T) holds a sentence's state past its end, so the final state of each direction is what a packed
sequence gives: the reverse direction starts at each sentence's own last token. The math is torch's GRU
(gates r, z, n in its order; tests/test_recurrence.py checks outputs and gradients against nn.GRU), and the
weights are an nn.GRU's own, so checkpoints do not change. `gru` runs it where it measured faster (a reading to
each sentence's end, bf16 products); elsewhere, and on CUDA (cuDNN), the module itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class GRULayer(torch.autograd.Function):
    """One direction of one GRU layer: x (B, T, I), h0 (B, H), weights as nn.GRU keeps them, mask (B, T) or None
    -> outputs (B, T, H) in float32 or wider (a held state past a sentence's end) and the last state (B, H).

    Inside, time comes first, so each step reads and writes contiguous rows. The forward pass keeps the state
    before each step and the gates; whatever the backward pass needs of them that is not sequential (the local
    derivatives of each gate) is formed for all steps at once, so its loop is a few products per step."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
                b_ih: torch.Tensor, b_hh: torch.Tensor, mask: torch.Tensor | None, reverse: bool,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps, hidden = x.size(0), x.size(1), h0.size(1)
        exact = torch.promote_types(w_hh.dtype, torch.float32)  # the gates' dtype: float32, or float64 where asked
        low_x = x.to(dtype).transpose(0, 1).reshape(steps * batch, -1)  # (T * B, I), time first
        low_ih, low_hh, bias_hh = w_ih.to(dtype), w_hh.to(dtype), b_hh.to(dtype)
        gi = torch.addmm(b_ih.to(dtype), low_x, low_ih.t()).to(exact).view(steps, batch, 3 * hidden)
        states = gi.new_empty(steps + 1, batch, hidden)  # states[k]: the state after k steps of this direction
        gates = gi.new_empty(steps, batch, 4 * hidden)  # r, z, n and W_hn h + b_hn, per time step
        states[0] = h0
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for k, t in enumerate(order):
            h, g = states[k], gates[t]
            gh = torch.addmm(bias_hh, h.to(dtype), low_hh.t()).to(exact)  # (B, 3H)
            torch.sigmoid(gi[t, :, : 2 * hidden] + gh[:, : 2 * hidden], out=g[:, : 2 * hidden])  # r, z
            g[:, 3 * hidden :] = gh[:, 2 * hidden :]
            r, z = g[:, :hidden], g[:, hidden : 2 * hidden]
            n = torch.tanh(torch.addcmul(gi[t, :, 2 * hidden :], r, g[:, 3 * hidden :]), out=g[:, 2 * hidden : 3 * hidden])
            new = torch.addcmul(n, z, h - n)  # (1 - z) n + z h
            states[k + 1] = new if mask is None else torch.where(mask[:, t : t + 1], new, h)
        by_time = states[:-1].flip(0) if reverse else states[:-1]  # (T, B, H): the state each time step read
        outputs = (states[1:].flip(0) if reverse else states[1:]).transpose(0, 1).contiguous()
        ctx.save_for_backward(low_x, low_ih, low_hh, by_time, gates, mask)
        ctx.reverse, ctx.dtypes = reverse, (x.dtype, h0.dtype, w_ih.dtype)
        return outputs, states[-1].clone()

    @staticmethod
    def backward(ctx: Any, grad_outputs: torch.Tensor, grad_last: torch.Tensor) -> tuple[Any, ...]:
        low_x, low_ih, low_hh, by_time, gates, mask = ctx.saved_tensors
        x_dtype, h_dtype, w_dtype = ctx.dtypes
        steps, batch, hidden = by_time.shape
        r, z, n, h_n = gates.split(hidden, dim=2)  # (T, B, H) each
        through_n = (1 - z) * (1 - n * n)  # d(new) / d(n's pre-activation), all steps at once
        through_z = (by_time - n) * z * (1 - z)
        through_r = h_n * r * (1 - r)
        keep = None if mask is None else mask.t().unsqueeze(2).to(by_time.dtype)  # (T, B, 1)
        if keep is not None:  # past a sentence's end the state is held: no gradient to the gates, all to the state
            through_n, through_z, z = through_n * keep, through_z * keep, z * keep + (1 - keep)
        grad_gi = by_time.new_empty(steps, batch, 3 * hidden)  # d(loss) / d(r, z, n pre-activations)
        grad_gh = torch.empty_like(grad_gi)  # the same seen from W_hh h: n's part scaled by r
        go = grad_outputs.transpose(0, 1)  # (T, B, H)
        dh = grad_last.to(by_time.dtype)
        for t in range(steps) if ctx.reverse else range(steps - 1, -1, -1):
            dh = dh + go[t]
            d = grad_gi[t]
            torch.mul(dh, through_n[t], out=d[:, 2 * hidden :])
            torch.mul(dh, through_z[t], out=d[:, hidden : 2 * hidden])
            torch.mul(d[:, 2 * hidden :], through_r[t], out=d[:, :hidden])
            e = grad_gh[t]
            e[:, : 2 * hidden] = d[:, : 2 * hidden]
            torch.mul(d[:, 2 * hidden :], r[t], out=e[:, 2 * hidden :])
            dh = dh * z[t] + e.to(low_hh.dtype) @ low_hh  # the product in `dtype`, the sum promoted back
        flat_gi, flat_gh = grad_gi.view(-1, 3 * hidden), grad_gh.view(-1, 3 * hidden)
        low_gi = flat_gi.to(low_ih.dtype)
        grad_x = (low_gi @ low_ih).view(steps, batch, -1).transpose(0, 1).to(x_dtype)
        grad_w_ih = (low_gi.t() @ low_x).to(w_dtype)
        grad_w_hh = (flat_gh.to(low_hh.dtype).t() @ by_time.reshape(-1, hidden).to(low_hh.dtype)).to(w_dtype)
        return (grad_x, dh.to(h_dtype), grad_w_ih, grad_w_hh, flat_gi.sum(0).to(w_dtype), flat_gh.sum(0).to(w_dtype),
                None, None, None)


def gru(module: nn.GRU, x: torch.Tensor, state: torch.Tensor | None = None, lengths: torch.Tensor | None = None,
        weights: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """An nn.GRU (batch_first) over x (B, T, I) from `state` (layers * directions, B, H) or zeros, reading each
    sentence up to its length when `lengths` (B,) is given; `weights` replaces some of its parameters (weight drop).
    -> outputs (B, T, directions * H), final states (layers * directions, B, H) as nn.GRU gives them.

    Training on the CPU runs the layers above where they pay (measured in docs/BENCHMARKS.md, "The GRU's backward
    pass"): a reading to each sentence's end, which torch runs packed, or products in bfloat16 (the autocast dtype);
    anything else (an fp32 reading of whole rows, inference, CUDA) runs the module itself, packed when `lengths`
    is given."""
    exact = module.get_parameter("weight_hh_l0").dtype
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else exact
    if x.device.type != "cpu" or not torch.is_grad_enabled() or (lengths is None and dtype == exact):
        return _module_gru(module, x, state, lengths, weights)
    params = {**dict(module.named_parameters()), **(weights or {})}
    directions = 2 if module.bidirectional else 1
    batch, steps = x.shape[:2]
    if state is None:
        state = x.new_zeros(module.num_layers * directions, batch, module.hidden_size, dtype=exact)
    mask = None if lengths is None else torch.arange(steps).unsqueeze(0) < lengths.cpu().unsqueeze(1)  # (B, T)
    finals, layer_input = [], x
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            out, last = GRULayer.apply(layer_input, state[layer * directions + direction], params[f"weight_ih_{suffix}"],
                                       params[f"weight_hh_{suffix}"], params[f"bias_ih_{suffix}"],
                                       params[f"bias_hh_{suffix}"], mask, bool(direction), dtype)
            outputs.append(out)
            finals.append(last)
        layer_input = torch.cat(outputs, dim=-1) if directions > 1 else outputs[0]
    return layer_input, torch.stack(finals)


def _module_gru(module: nn.GRU, x: torch.Tensor, state: torch.Tensor | None, lengths: torch.Tensor | None,
                weights: dict[str, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The module itself, with `weights` swapped in by functional_call (which keeps the fused kernel)."""
    inputs: Any = x if lengths is None else pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                                 enforce_sorted=False)
    out, final = (torch.func.functional_call(module, weights, (inputs, state)) if weights
                  else module(inputs, state))
    if lengths is not None:
        out = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
    return out, final
