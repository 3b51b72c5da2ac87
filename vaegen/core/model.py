"""The sentence VAE of Bowman et al. (2016): a GRU encoder to q(z|x), a GRU decoder p(x|z).

The encoder reads the sentence (pieces then </s>) and maps its final state to the mean and log
variance of a diagonal Gaussian posterior. The decoder is a GRU language model conditioned on z
through its initial state and/or by z concatenated to every input embedding. With latent_dim = 0
there is no encoder and z is empty: the decoder alone is the RNN language model baseline, trained
and scored by the same code (its KL is 0 and its ELBO is its exact likelihood). Remedies for posterior
collapse that live in the model: batch-normalised posterior means (BN-VAE, Zhu et al., 2020), whose
fixed scale puts a floor under the expected KL, and `reset_decoder` for autoencoder pretraining
(Li et al., 2019). The model computes decoder states and, through `token_nll`, the likelihood of
targets under its output layer (the one place the layer is applied to states in bulk); the loss is
assembled in `objectives`, and randomness (the reparameterisation noise) is passed in by the caller.

With model.label_dim > 0 the model is a conditional VAE (Sohn et al., 2015): each sentence has a label
(for Song ci its tune), whose learnt embedding c joins the encoder's summary in q(z|x, c) and z in the
decoder. What the decoder reads is then the code [z; c] (`code`); without labels the code is z.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vaegen.core.config import ModelConfig
from vaegen.core.objectives import adaptive_reconstruction_nll, reconstruction_nll
from vaegen.core.recurrence import gru
from vaegen.core.tokenizer import PAD_ID

# A form-aware decoder (model.form_dim > 0) reads four ids at each step beside the previous token, each below the
# size of its table: the kind of step, its clause, the characters left in the clause, and a token whose group it
# is to follow (0: none). What they mean for a ci is `songci.form_inputs`'s to say; the model only embeds them.
KINDS, MAX_CLAUSES, MAX_LEFT, RHYME_GROUPS = 11, 64, 32, 48
FORM_IDS = 4  # ids per step
ADAPTIVE_DIV = 4.0  # each tail cluster of an adaptive output layer: 4x the tokens of the one before, 1/4 its dimension


AUTO_HEAD = -1  # model.output_head's default: the output layer chosen by the vocabulary (`output_head_for`)
DEFAULT_HEAD = 1000  # the head an adaptive output layer gets by default
ADAPTIVE_FROM = 4 * DEFAULT_HEAD  # the smallest vocabulary that gets one by default


def output_head_for(config: ModelConfig, vocab_size: int) -> int:
    """model.output_head as the model is built: the configured one, or by default an adaptive head of the
    DEFAULT_HEAD most frequent tokens from ADAPTIVE_FROM tokens on (a full softmax below, or with tied embeddings).
    Measured (docs/BENCHMARKS.md, "Output layer"): on PTB's 10,002 words the same validation at 1,500 steps, 4-5x the
    peer's speed; on whole Song ci's 5,366 characters 1.64x an epoch but a 1.3% higher test perplexity at the same
    epochs, so the Song ci presets name a full softmax."""
    if config.output_head != AUTO_HEAD:
        return config.output_head
    return DEFAULT_HEAD if vocab_size >= ADAPTIVE_FROM and not config.tie_embeddings else 0


def adaptive_cutoffs(head: int, vocab_size: int) -> list[int]:
    """Where the clusters of an adaptive output layer begin, in frequency ranks: after the `head` most frequent
    tokens, then every ADAPTIVE_DIV times further, the last cluster ending with the vocabulary."""
    if not 0 < head < vocab_size:
        raise ValueError(f"model.output_head = {head} must lie between 0 and the vocabulary's {vocab_size} tokens")
    cutoffs = [head]
    while cutoffs[-1] * ADAPTIVE_DIV < vocab_size:
        cutoffs.append(int(cutoffs[-1] * ADAPTIVE_DIV))
    return cutoffs


class Posterior(NamedTuple):
    mu: torch.Tensor  # (B, latent_dim)
    logvar: torch.Tensor  # (B, latent_dim)


class VAEOutput(NamedTuple):
    hidden: torch.Tensor  # (B, T, hidden_dim[+G]): what the output layer reads; `token_nll` scores targets from it
    mu: torch.Tensor  # (B, latent_dim)
    logvar: torch.Tensor  # (B, latent_dim)
    z: torch.Tensor  # (B, latent_dim)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None) -> torch.Tensor:
    """z = mu + sigma * eps, differentiable in mu and logvar; eps None gives the posterior mean."""
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


class FormEmbedding(nn.Module):
    """Where a step stands in a form (the four ids above; `songci.form_inputs` for a ci), as the sum of one
    learnt embedding per id: (B, T, 4) ids -> (B, T, form_dim). The first rhyme's token is
    read as its rhyme group (`rhyme_group`, filled by `SentenceVAE.set_rhyme_groups`): a few dozen groups, each
    seen in hundreds of ci, where thousands of tokens are each seen in a few."""

    rhyme_group: torch.Tensor

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.kind = nn.Embedding(KINDS, dim)
        self.clause = nn.Embedding(MAX_CLAUSES, dim)
        self.left = nn.Embedding(MAX_LEFT, dim)
        self.rhyme = nn.Embedding(RHYME_GROUPS, dim, padding_idx=0)  # 0: no rhyme to follow
        self.register_buffer("rhyme_group", torch.zeros(vocab_size, dtype=torch.long))  # token -> its group, 0 none

    def reset_parameters(self) -> None:
        for table in (self.kind, self.clause, self.left, self.rhyme):
            table.reset_parameters()

    def groups(self, form_ids: torch.Tensor) -> torch.Tensor:
        """(B, T, 4) form ids -> (B, T): the rhyme group each step is to follow (0: none)."""
        return self.rhyme_group[form_ids[..., 3]]

    def forward(self, form_ids: torch.Tensor) -> torch.Tensor:
        return (self.kind(form_ids[..., 0]) + self.clause(form_ids[..., 1]) + self.left(form_ids[..., 2])
                + self.rhyme(self.groups(form_ids)))


class SentenceVAE(nn.Module):
    output_rank: torch.Tensor  # an adaptive output layer's class of each token (`rank_outputs`)

    def __init__(self, config: ModelConfig, vocab_size: int, labels: int = 0) -> None:
        """`labels`: how many labels a conditional model (label_dim > 0) tells apart, the "other" one included."""
        super().__init__()
        self.config = config
        c = config
        if c.label_dim and labels < 1:
            raise ValueError("a conditional model (label_dim > 0) needs at least one label")
        self.label_embedding = nn.Embedding(labels, c.label_dim) if c.label_dim else None
        code_dim = c.latent_dim + c.label_dim
        directions = 2 if c.bidirectional else 1
        self.encoder_dim = c.encoder_dim or c.hidden_dim
        self.embedding = nn.Embedding(vocab_size, c.embed_dim, padding_idx=PAD_ID)  # shared by both GRUs
        self.dropout = nn.Dropout(c.embed_dropout)
        self.output_dropout = nn.Dropout(c.output_dropout)
        self.encoder = (nn.GRU(c.embed_dim, self.encoder_dim, c.encoder_layers, batch_first=True, bidirectional=c.bidirectional)
                        if c.latent_dim else None)
        self.to_posterior = (nn.Linear(directions * self.encoder_dim + c.label_dim, 2 * c.latent_dim)
                             if c.latent_dim else None)
        # BN-VAE: mu = gamma * BN(mu) + shift, gamma fixed, so E[KL] >= latent_dim * gamma^2 / 2 over a batch
        self.mu_norm = nn.BatchNorm1d(c.latent_dim, affine=False) if c.bn_gamma and c.latent_dim else None
        self.mu_shift = nn.Parameter(torch.zeros(c.latent_dim)) if self.mu_norm is not None else None
        self.latent_to_hidden = (nn.Linear(code_dim, c.decoder_layers * c.hidden_dim)
                                 if c.z_to_init and code_dim else None)
        decoder_input = c.embed_dim + (code_dim if c.z_every_step else 0) + c.form_dim
        self.decoder = nn.GRU(decoder_input, c.hidden_dim, c.decoder_layers, batch_first=True)
        # The output layer: a full softmax, or an adaptive one over tokens ranked by their training frequency
        # (`rank_outputs`; `output_rank[token]` is the layer's class of each token). A form-aware model's rhyme
        # one-hot (`decoder_states`) is read by the adaptive layer as more features; the full one scores it apart
        head = output_head_for(c, vocab_size)
        features = c.hidden_dim + (RHYME_GROUPS - 1 if c.form_dim else 0)
        self.output = nn.Linear(c.hidden_dim, vocab_size) if not head else None
        self.adaptive_output = (nn.AdaptiveLogSoftmaxWithLoss(features, vocab_size, adaptive_cutoffs(
            head, vocab_size), ADAPTIVE_DIV) if head else None)
        if self.adaptive_output is not None:
            self.register_buffer("output_rank", torch.arange(vocab_size))
        if c.tie_embeddings and self.output is not None:  # the embedding's N(0, 1) start would make the first logits ~sqrt(hidden) wide
            bound = 1.0 / c.hidden_dim ** 0.5  # the output layer's own start
            with torch.no_grad():
                self.embedding.weight.uniform_(-bound, bound)[PAD_ID].zero_()
            self.output.weight = self.embedding.weight
        self.form_embedding = FormEmbedding(c.form_dim, vocab_size) if c.form_dim else None  # last: same init above
        # At a rhyme slot, a learnt score of every token for the group to follow: p(character | rhyme) from the corpus
        self.rhyme_output = (nn.Parameter(torch.zeros(vocab_size, RHYME_GROUPS - 1))
                             if c.form_dim and self.output is not None else None)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None = None) -> Posterior:
        """tokens (B, T), lengths (B,), labels (B,) for a conditional model -> q(z|x[, c]). Reading each
        sentence to its own end (packed, or masked in CPU training: `recurrence.gru`) makes it independent of padding."""
        if self.encoder is None or self.to_posterior is None:  # the language model: an empty code
            empty = tokens.new_zeros(tokens.size(0), 0, dtype=self.embedding.weight.dtype)
            return Posterior(empty, empty)
        embedded = self.embedding(tokens)  # (B, T, E): no dropout, the encoder must see the whole sentence
        _, hidden = gru(self.encoder, embedded, lengths=lengths)  # (layers * directions, B, H)
        directions = 2 if self.config.bidirectional else 1
        last = hidden.view(self.config.encoder_layers, directions, -1, self.encoder_dim)[-1]  # (D, B, H)
        summary = last.transpose(0, 1).reshape(tokens.size(0), -1)  # (B, D * H)
        if self.label_embedding is not None:
            summary = torch.cat([summary, self.label_embedding(self._labels(labels))], dim=-1)  # (B, D * H + C)
        mu, logvar = self.to_posterior(summary).chunk(2, dim=-1)
        if self.mu_norm is not None and self.mu_shift is not None:
            mu = self.config.bn_gamma * self.mu_norm(mu) + self.mu_shift
        return Posterior(mu, logvar)

    def _labels(self, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ValueError("this model is conditioned on labels: pass one per sentence")
        return labels

    def code(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """What the decoder reads: z (B, L), then for a conditional model the labels' (B,) embeddings -> (B, L + C)."""
        if self.label_embedding is None:
            return z
        return torch.cat([z, self.label_embedding(self._labels(labels)).to(z.dtype)], dim=-1)

    def initial_state(self, code: torch.Tensor) -> torch.Tensor:
        """code (B, L + C) -> decoder hidden state (layers, B, H): tanh(W code + b), or zeros when the code
        goes in only as input."""
        layers, hidden = self.config.decoder_layers, self.config.hidden_dim
        if self.latent_to_hidden is None:
            return code.new_zeros(layers, code.size(0), hidden)
        state = torch.tanh(self.latent_to_hidden(code))  # (B, layers * H)
        return state.view(code.size(0), layers, hidden).transpose(0, 1).contiguous()

    def decoder_states(self, inputs: torch.Tensor, code: torch.Tensor, state: torch.Tensor,
                       form_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (B, T) token ids, code (B, L + C), state (layers, B, H), and for a form-aware model the form
        ids (B, T, 4) of each step (`songci.form_inputs`) -> what the output layer reads (B, T, H), new state.

        For a form-aware model what the output layer reads also holds, after the H states, the rhyme group
        each step is to follow as a one-hot (B, T, RHYME_GROUPS - 1), all zeros where there is none: the
        output layer's `rhyme_output` columns turn it into a learnt preference among the characters."""
        x = self.dropout(self.embedding(inputs))  # (B, T, E): dropout on the decoder's side alone, as in the reference
        if self.config.z_every_step:
            x = torch.cat([x, code.unsqueeze(1).expand(-1, x.size(1), -1)], dim=-1)  # (B, T, E + L + C)
        if self.form_embedding is None:
            out, state = self._recur(x, state)
            return self.output_dropout(out), state
        if form_ids is None:  # no form asked (a tune without one): every step reads "no form"
            form_ids = inputs.new_zeros(*inputs.shape, FORM_IDS)
        x = torch.cat([x, self.form_embedding(form_ids).to(x.dtype)], dim=-1)  # (B, T, E + L + C + F)
        out, state = self._recur(x, state)
        rhyme = nn.functional.one_hot(self.form_embedding.groups(form_ids), RHYME_GROUPS)[..., 1:].to(out.dtype)
        return torch.cat([self.output_dropout(out), rhyme], dim=-1), state

    def _recur(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder GRU; in training with weight_drop, one DropConnect mask on its hidden-to-hidden weights per
        batch (AWD-LSTM, Merity et al., 2018): it regularises the recurrence itself, which dropout on inputs and
        outputs does not reach, and keeps the fused GRU kernel."""
        p = self.config.weight_drop
        if not (self.training and p):
            return gru(self.decoder, x, state)
        dropped = {name: nn.functional.dropout(weight, p) for name, weight in self.decoder.named_parameters()
                   if name.startswith("weight_hh")}
        return gru(self.decoder, x, state, weights=dropped)

    def decode(self, inputs: torch.Tensor, code: torch.Tensor, state: torch.Tensor,
               form_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Like `decoder_states` but returning logits (B, T, V): for generation, one step at a time. Under an
        adaptive output layer they are the log-probabilities themselves, normalised, in token order.

        Training never forms the full logits: `token_nll` fuses the output layer into the loss.
        """
        out, state = self.decoder_states(inputs, code, state, form_ids)
        if self.adaptive_output is not None:
            logp = self.adaptive_output.log_prob(out.reshape(-1, out.size(-1)))  # (B * T, V) in rank order
            return logp.index_select(1, self.output_rank).view(*out.shape[:-1], -1), state
        assert self.output is not None, "a model has a full or an adaptive output layer"
        if self.rhyme_output is None:
            return self.output(out), state
        hidden = self.config.hidden_dim  # the states, then the rhyme one-hot: scored apart, no (V, H + G) copy per step
        return self.output(out[..., :hidden]) + out[..., hidden:] @ self.rhyme_output.T, state

    def output_weight(self) -> torch.Tensor:
        """The full output layer's weight (V, H), with the rhyme columns after it for a form-aware model (V, H + G)."""
        assert self.output is not None, "an adaptive output layer has no single matrix"
        if self.rhyme_output is None:
            return self.output.weight
        return torch.cat([self.output.weight, self.rhyme_output], dim=1)

    def set_rhyme_groups(self, classes: torch.Tensor) -> None:
        """Each token's rhyme class (V,), -1 for a token that does not rhyme (`songci.rhymes.rhyme_classes`): what a
        form-aware model reads of the first rhyme's token. Kept in the checkpoint."""
        if self.form_embedding is None:
            return
        if classes.max().item() + 2 > RHYME_GROUPS:
            raise ValueError(f"{classes.max().item() + 1} rhyme classes; a form-aware model tells {RHYME_GROUPS - 1} apart")
        self.form_embedding.rhyme_group.copy_(classes + 1)

    def token_nll(self, hidden: torch.Tensor, targets: torch.Tensor,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Summed token NLL per sentence: what the output layer reads (B, T, H[+G]), targets (B, T) -> (B,);
        padding costs nothing.

        The output layer is fused into the cross-entropy (objectives.LinearCrossEntropy), its matrix products
        in `dtype`, so the (B, T, V) logits are never formed; an adaptive one scores each token's cluster alone
        (in float32).
        """
        if self.adaptive_output is not None:
            return adaptive_reconstruction_nll(hidden, self.adaptive_output, self.output_rank, targets)
        assert self.output is not None
        return reconstruction_nll(hidden, self.output_weight(), self.output.bias, targets, dtype)

    def rank_outputs(self, counts: torch.Tensor) -> None:
        """Rank the tokens of an adaptive output layer by their training counts (V,), most frequent first (ties by
        id): its head then holds the most frequent. Kept in the checkpoint; nothing for a full softmax."""
        if self.adaptive_output is None:
            return
        order = torch.argsort(-counts.to(torch.long), stable=True)  # token ids, most frequent first
        self.output_rank[order.to(self.output_rank.device)] = torch.arange(len(order), device=self.output_rank.device)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """What q(z|x) alone owns (the embeddings of words and labels are shared, so they count as the decoder's):
        the parameters that aggressive encoder updates (He et al., 2019) move."""
        modules = [m for m in (self.encoder, self.to_posterior) if m is not None]
        return [p for m in modules for p in m.parameters()] + ([self.mu_shift] if self.mu_shift is not None else [])

    def reset_decoder(self) -> list[nn.Parameter]:
        """Re-initialise everything on the decoder's side but the shared embedding, and return what was reset.

        Li et al. (2019): after autoencoder pretraining the encoder keeps what it learnt and a fresh
        decoder learns to use it.
        """
        reset: list[nn.Parameter] = []
        for module in (self.decoder, self.latent_to_hidden, self.form_embedding):
            if module is not None:
                module.reset_parameters()
                reset += list(module.parameters())
        if self.rhyme_output is not None:
            nn.init.zeros_(self.rhyme_output)
            reset.append(self.rhyme_output)
        if self.adaptive_output is not None:
            self.adaptive_output.reset_parameters()
            reset += list(self.adaptive_output.parameters())
        elif self.config.tie_embeddings and self.output is not None:  # the output matrix is the encoder's embedding:
            nn.init.zeros_(self.output.bias)  # only the bias is the decoder's
            reset.append(self.output.bias)
        elif self.output is not None:
            self.output.reset_parameters()
            reset += list(self.output.parameters())
        return reset

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, decoder_inputs: torch.Tensor,
                eps: torch.Tensor | None, labels: torch.Tensor | None = None,
                form_ids: torch.Tensor | None = None) -> VAEOutput:
        mu, logvar = self.encode(tokens, lengths, labels)
        z = reparameterize(mu, logvar, eps)
        code = self.code(z, labels)
        hidden, _ = self.decoder_states(decoder_inputs, code, self.initial_state(code), form_ids)
        return VAEOutput(hidden, mu, logvar, z)
