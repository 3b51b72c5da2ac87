"""Training, top to bottom: tokenizer, token ids, model, then one loop of steps and validations.

Each step: its plan from the run's position (`phases.plan_step`: phase, beta, learning rate, which
parameters move), a length-grouped batch, word dropout on the decoder inputs, forward, loss (free
bits applied to the KL term), backward, gradient clipping, Adam. The phases (autoencoder pretraining,
aggressive encoder updates, the VAE, encoder refinement) are described in `phases`. After each epoch,
and every `train.eval_every` steps, the model is scored on the validation lines at beta = 1 (-ELBO,
KL, MI, active units). The checkpoint holds the best weights by validation -ELBO (what `sample` uses)
and the `RunState` (`run_state`), from which a run resumes exactly where it stopped. It is rewritten
at each validation, every `checkpoint_every` steps or `checkpoint_minutes`, on Ctrl-C or SIGTERM, and
when training fails (a non-finite loss, out of memory, a full disk): always atomically, so no good
work is lost.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from vaegen.core import checkpoint
from vaegen.core.config import Config
from vaegen.core.data import collate, epoch_batches
from vaegen.core.devices import resolve_precision
from vaegen.core.errors import Interrupted, TrainingError
from vaegen.core.files import cache_dir
from vaegen.core.labels import Labels
from vaegen.core.model import SentenceVAE, output_head_for
from vaegen.core.objectives import LossTerms, encoder_converged, vae_loss, word_dropout
from vaegen.core.token_cache import TokenArray, cached_encode, encode_lines
from vaegen.core.tokenizer import EOS_ID, UNK_ID, Tokenizer
from vaegen.songci.form_inputs import FormReader
from vaegen.songci.rhymes import rhyme_classes
from vaegen.songci.tunes import learn_labels
from vaegen.train import distributed, metrics_log
from vaegen.train.phases import Moves, Phase, StepPlan, Timeline, aggressive_continues, plan_step
from vaegen.train.run_state import RunState, fingerprint
from vaegen.train.validation import ElboReport, evaluate_elbo

AGGRESSIVE_MAX_STEPS = 100  # encoder-only updates per decoder update at most (He et al., 2019)
Log = Callable[[str], None]


class StopRequest:
    """Signal handler: the first Ctrl-C or SIGTERM asks the loop to stop at the next step boundary
    (so the checkpoint written is consistent); a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def stop_on_signal() -> Iterator[StopRequest]:
    stop = StopRequest()
    try:
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot be handled here
        yield stop
        return
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class TrainResult:
    best: ElboReport
    steps: int
    epochs: int
    seconds: float
    skipped: int


@dataclass
class Run:
    """What a run works with, built once; where it stands is the `RunState`."""

    config: Config
    out: Path
    device: torch.device
    say: Log  # rank 0 prints; the other ranks are silent
    tokenizer: Tokenizer
    labels: Labels | None
    train_ids: TokenArray
    valid_ids: TokenArray
    train_label_ids: list[int] | None
    valid_label_ids: list[int] | None
    model: SentenceVAE
    optimizer: torch.optim.Optimizer
    low_precision: bool  # bf16 matrix products
    form_reader: FormReader | None  # a form-aware model's reader of each ci's own form
    replicated: nn.Module = field(init=False)  # the model; under torchrun, its gradients averaged across ranks
    moving: dict[Moves, set[int] | None] = field(init=False)  # the ids of the parameters each kind of update moves

    def __post_init__(self) -> None:
        self.replicated = distributed.wrap(self.model)
        encoder = {id(p) for p in self.model.encoder_parameters()}
        self.moving = {Moves.ALL: None, Moves.ENCODER: encoder,
                       Moves.DECODER: {id(p) for p in self.model.parameters()} - encoder}

    @property
    def main(self) -> bool:
        """Only rank 0 logs and writes checkpoints."""
        return distributed.rank() == 0


def fit(config: Config, train_lines: list[str], valid_lines: list[str], out: Path, device: torch.device,
        resume: dict[str, Any] | None = None, log: Log | None = None, progress: bool = True,
        train_labels: list[str] | None = None, valid_labels: list[str] | None = None) -> TrainResult:
    """Train on the lines, writing `out` as described above; `resume` is a payload from `checkpoint.read`.
    A conditional model (model.label_dim > 0) takes a label per line (`train_labels`, `valid_labels`)."""
    distributed.setup(device)  # under torchrun: join the process group; alone: nothing
    rank, tc = distributed.rank(), config.train
    say = (log or (lambda message: tqdm.write(message, file=sys.stderr))) if rank == 0 else (lambda message: None)
    if (config.model.label_dim > 0) != (train_labels is not None and valid_labels is not None):
        raise TrainingError("model.label_dim > 0 trains on labelled lines ('label<TAB>text') and needs labels for "
                            "both the training and the validation lines; 0 trains on plain lines")
    low_precision = resolve_precision(tc.precision, device) == "bf16"  # refused here where bf16 is slow
    fingerprints = fingerprint(train_lines, train_labels), fingerprint(valid_lines, valid_labels)
    state = RunState.fresh(config, rank, *fingerprints)  # seeds the initial weights
    run = build_run(config, out, device, say, low_precision=low_precision, resume=resume, train_lines=train_lines,
                    valid_lines=valid_lines, train_labels=train_labels, valid_labels=valid_labels)
    if resume is None:
        say(f"model: {sum(p.numel() for p in run.model.parameters()):,} parameters on {device}"
            + (f", {distributed.world_size()} processes" if distributed.world_size() > 1 else ""))
        if run.main:
            metrics_log.start(out)
    else:
        state = RunState.restore(resume, config, rank, *fingerprints, run.model, run.optimizer)
        if run.main:
            metrics_log.rewind(out, state.step)
        say(f"resuming at step {state.step} (epoch {state.epoch + 1}, batch {state.position + 1})")
    timeline = Timeline.of(config, len(run.train_ids))
    try:
        with stop_on_signal() as stop:
            while not timeline.finished(state.step, state.epoch):
                if timeline.pretrain_steps and state.step == timeline.pretrain_steps:  # pretraining is whole epochs
                    reset_decoder(run, state)
                train_epoch(run, state, timeline, stop, progress)
                if distributed.agree(0.0, stop.requested, device)[1]:
                    raise interrupted(run, state)
    except (Interrupted, KeyboardInterrupt):
        raise  # the checkpoint was written at a step boundary, or a second Ctrl-C asked to stop at once
    except Exception:
        save_after_failure(run, state)
        raise
    assert state.best is not None  # the loop ran at least once: resuming a finished run is refused before fit
    distributed.check_replicas_agree(run.model, device)
    if distributed.world_size() > 1:
        say(f"weights identical on all {distributed.world_size()} ranks")
    distributed.teardown()
    return TrainResult(state.best, state.step, state.epoch, state.elapsed, state.skipped)


def build_run(config: Config, out: Path, device: torch.device, say: Log, *, low_precision: bool,
              resume: dict[str, Any] | None, train_lines: list[str], valid_lines: list[str],
              train_labels: list[str] | None, valid_labels: list[str] | None) -> Run:
    """The tokenizer (trained once, on rank 0, or the run's own when resuming), the token ids, the labels, the
    model and its optimizer."""
    if resume is None:
        trained = None
        if distributed.rank() == 0:
            trained, choice = Tokenizer.train(train_lines, config.tokenizer)
            say(f"tokenizer: {choice.model_type} model, {choice.vocab_size} pieces, character coverage "
                f"{choice.character_coverage} ({choice.cjk_share:.0%} of characters are CJK)")
        tokenizer = Tokenizer(distributed.broadcast(trained.model_bytes if trained else None))
    else:
        tokenizer = Tokenizer(resume["tokenizer"])
    max_length = config.data.max_length
    train_ids, train_cut, cached = cached_encode(tokenizer, train_lines, fingerprint(train_lines, train_labels),
                                                 max_length)
    valid_ids, valid_cut = encode_lines(tokenizer, valid_lines, max_length)
    if cached:
        say(f"token ids of the {len(train_ids):,} training lines read from the cache in {cache_dir()}")
    if train_cut or valid_cut:
        say(f"truncated {train_cut} training and {valid_cut} validation lines to data.max_length = {max_length} tokens")
    labels = train_label_ids = valid_label_ids = None
    if train_labels is not None and valid_labels is not None:
        labels = (Labels.from_payload(resume["labels"]) if resume is not None
                  else learn_labels(train_labels, train_lines, config.data.min_label_count))
        train_label_ids, valid_label_ids = labels.ids(train_labels), labels.ids(valid_labels)
        say(f"labels: {len(labels.known)} seen at least data.min_label_count = {config.data.min_label_count} times; "
            f"the {sum(i == Labels.OTHER for i in train_label_ids):,} training lines of rarer ones share one "
            f"'other' label")
    head = output_head_for(config.model, tokenizer.vocab_size)  # the default resolved, and saved as chosen
    config = replace(config, model=replace(config.model, output_head=head))
    if config.model.output_head >= tokenizer.vocab_size:
        raise TrainingError(f"model.output_head = {config.model.output_head} is not below the vocabulary's "
                            f"{tokenizer.vocab_size} pieces; lower it, or set 0 for a full softmax")
    model = SentenceVAE(config.model, tokenizer.vocab_size, len(labels) if labels is not None else 0).to(device)
    model.rank_outputs(token_counts(train_ids, tokenizer.vocab_size))
    if config.model.form_dim:
        model.set_rhyme_groups(rhyme_classes(tokenizer).to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, fused=True)  # one kernel for all parameters
    return Run(config=config, out=out, device=device, say=say, tokenizer=tokenizer, labels=labels,
               train_ids=train_ids, valid_ids=valid_ids, train_label_ids=train_label_ids,
               valid_label_ids=valid_label_ids, model=model, optimizer=optimizer, low_precision=low_precision,
               form_reader=FormReader(tokenizer) if config.model.form_dim else None)


def token_counts(ids: TokenArray, vocab_size: int) -> torch.Tensor:
    """(V,) how often each token is a target in training: its pieces, and one </s> per sentence."""
    counts = torch.from_numpy(np.bincount(ids.ids, minlength=vocab_size).astype(np.int64))
    counts[EOS_ID] += len(ids)
    return counts


def train_epoch(run: Run, state: RunState, timeline: Timeline, stop: StopRequest, progress: bool) -> None:
    """The rest of the current epoch (or up to train.max_steps), then a validation at beta = 1."""
    tc, lengths = run.config.train, run.train_ids.lengths
    batches = epoch_batches(lengths, tc.batch_size, tc.seed, state.epoch)
    phase = timeline.phase(state.epoch, state.aggressive)
    run.model.train(phase is not Phase.REFINEMENT)  # refinement fits q to the decoder as evaluation runs it
    if phase is Phase.REFINEMENT and state.position == 0:
        run.say(f"refinement epoch {state.epoch + 1 - tc.epochs}/{tc.refine_epochs}: the encoder alone, at beta = 1 "
                f"without free bits or word dropout")
    bar = tqdm(batches[state.position:], initial=state.position, total=len(batches), unit="batch",
               desc=f"epoch {state.epoch + 1}/{timeline.epochs}", disable=not progress, dynamic_ncols=True)
    window = metrics_log.Throughput()
    for indices in bar:
        plan = plan_step(state.step, state.epoch, state.aggressive, timeline)
        encoder_steps = aggressive_updates(run, state, indices, plan) if plan.encoder_first else 0
        terms = batch_terms(run, state, indices, plan)
        loss, stop_now = distributed.agree(terms.loss.item(), stop.requested, run.device)
        if math.isfinite(loss):
            update(run, terms.loss, plan.lr, plan.moves)
        else:
            skip(run, state, loss)
        state.step, state.position = state.step + 1, state.position + 1
        window.add(int(lengths[indices].sum()) + len(indices), len(indices), encoder_steps)  # </s> counted
        if state.step % 10 == 0 or state.step % tc.log_every == 0:
            report_step(run, state, plan, terms, loss, window, bar)
            window = metrics_log.Throughput()
        if stop_now:
            bar.close()
            raise interrupted(run, state)
        if tc.eval_every and state.step % tc.eval_every == 0 and state.position < len(batches):
            validate(run, state, f"epoch {state.epoch + 1} (batch {state.position}/{len(batches)})")
        elif (tc.checkpoint_every and state.step % tc.checkpoint_every == 0) or (
                tc.checkpoint_minutes and time.monotonic() - state.last_save >= 60 * tc.checkpoint_minutes):
            save(run, state)
        if timeline.finished(state.step, state.epoch):
            break
    bar.close()
    label = f"epoch {state.epoch + 1}"
    if state.position == len(batches):
        state.epoch, state.position = state.epoch + 1, 0
    else:
        label += f" (batch {state.position}/{len(batches)})"
    if state.validated_step != state.step:  # a validation at train.eval_every may have scored this step already
        validate(run, state, label, aggressive_epoch_ended=phase is Phase.AGGRESSIVE and state.position == 0)


def batch_terms(run: Run, state: RunState, indices: list[int], plan: StepPlan) -> LossTerms:
    """Forward this rank's share of a global batch, word dropout and fresh noise included, to its loss terms; the
    loss is weighted by the share's part of the global batch, so that averaging over ranks gives its mean."""
    tc = run.config.train
    share, weight = distributed.share(indices, distributed.rank(), distributed.world_size())
    share_labels = None if run.train_label_ids is None else [run.train_label_ids[i] for i in share]
    batch = collate([run.train_ids[i] for i in share], share_labels, run.form_reader).to(run.device)
    inputs = word_dropout(batch.decoder_inputs, 0.0 if plan.plain else tc.word_dropout, UNK_ID, state.noise)
    eps = torch.randn(len(share), run.config.model.latent_dim, generator=state.noise).to(run.device)
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.low_precision):
        output = run.replicated(batch.tokens, batch.lengths, inputs, eps, batch.labels, batch.form_ids)
    rec = run.model.token_nll(output.hidden, batch.tokens, torch.bfloat16 if run.low_precision else torch.float32)
    terms = vae_loss(rec, output.mu, output.logvar, plan.beta, 0.0 if plan.plain else tc.free_bits,
                     tc.free_bits_per_example, 0.0 if plan.plain else tc.kl_target)
    return terms._replace(loss=terms.loss * weight)


def update(run: Run, loss: torch.Tensor, rate: float, moves: Moves) -> None:
    """One clipped Adam step at `rate` that changes only the parameters `moves` names."""
    for group in run.optimizer.param_groups:
        group["lr"] = rate
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if (moving := run.moving[moves]) is not None:
        for parameter in run.model.parameters():
            if id(parameter) not in moving:
                parameter.grad = None  # Adam leaves parameters without a gradient alone
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.train.grad_clip)
    run.optimizer.step()


def aggressive_updates(run: Run, state: RunState, indices: list[int], plan: StepPlan) -> int:
    """He et al. (2019): update the encoder alone, on this batch and then fresh random ones, until its loss
    stops falling (at most AGGRESSIVE_MAX_STEPS); returns how many updates it took."""
    losses: list[float] = []
    while len(losses) < AGGRESSIVE_MAX_STEPS and not encoder_converged(losses):
        terms = batch_terms(run, state, indices, plan)
        loss = distributed.agree(terms.loss.item(), False, run.device)[0]  # every rank stops at the same step
        if not math.isfinite(loss):
            break
        losses.append(loss)
        update(run, terms.loss, plan.lr, Moves.ENCODER)
        indices = torch.randint(len(run.train_ids), (run.config.train.batch_size,), generator=state.noise).tolist()
    return len(losses)


def skip(run: Run, state: RunState, loss: float) -> None:
    """A non-finite loss: skip the batch while train.max_nonfinite_skips allows, else stop (the weights are still
    those of the last good step, and the failure handler saves them)."""
    state.skipped += 1
    if state.skipped > run.config.train.max_nonfinite_skips:
        raise TrainingError(f"the loss became {loss} at step {state.step + 1}; {run.out} holds the run as it stood "
                            f"after step {state.step}; lower train.lr or train.grad_clip, or allow skips with "
                            f"train.max_nonfinite_skips")
    run.say(f"skipped step {state.step + 1}: the loss became {loss} ({state.skipped} skipped so far)")


def report_step(run: Run, state: RunState, plan: StepPlan, terms: LossTerms, loss: float,
                window: metrics_log.Throughput, bar: tqdm) -> None:
    """The progress bar's figures, and every train.log_every steps a training record in the metrics log."""
    record = {"kind": "train", "step": state.step, "epoch": state.epoch + 1, "loss": loss,
              "rec": terms.rec.mean().item(), "kl": terms.kl.mean().item(), "beta": plan.beta,
              **window.report(plan.encoder_first)}
    bar.set_postfix(loss=f"{loss:.2f}", nll=f"{record['rec']:.2f}", kl=f"{record['kl']:.2f}", beta=f"{plan.beta:.3f}",
                    tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
    if state.step % run.config.train.log_every == 0 and run.main:
        metrics_log.append(run.out, record)


def validate(run: Run, state: RunState, label: str, aggressive_epoch_ended: bool = False) -> None:
    """Score at beta = 1, keep the best weights, log, decide on aggressive updates, write the checkpoint."""
    report = evaluate_elbo(run.model, run.valid_ids, run.config.train.batch_size, run.device,
                           labels=run.valid_label_ids, form_reader=run.form_reader)
    improved = state.keep_if_best(report, run.model)
    run.say(f"{label} step {state.step} valid: NLL {report.rec:.2f}  KL {report.kl:.2f}  -ELBO {report.elbo:.2f} "
            f"nats/sentence, ppl <= {report.ppl:.2f} per token, {report.mi_text()}, "
            f"active units {report.au}/{run.config.model.latent_dim}" + ("  (best)" if improved else ""))
    if run.main:
        metrics_log.append(run.out, {"kind": "valid", "step": state.step, "epoch": state.epoch,
                                     "seconds": state.elapsed, **report.as_dict()})
    if aggressive_epoch_ended:
        if not aggressive_continues(state.epoch, report.mi, state.previous_mi, run.config.train):
            state.aggressive = False
            run.say(f"aggressive encoder updates end after epoch {state.epoch} (validation MI {report.mi:.2f}"
                    + (f", before {state.previous_mi:.2f})" if state.previous_mi is not None else ")"))
        state.previous_mi = report.mi
    state.validated_step = state.step
    save(run, state)


def reset_decoder(run: Run, state: RunState) -> None:
    """End of autoencoder pretraining: a fresh decoder, identical on every rank, with fresh Adam moments."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.config.train.seed)
        for parameter in run.model.reset_decoder():
            run.optimizer.state.pop(parameter, None)
    state.best, state.best_weights = None, None  # the autoencoder's weights are no VAE to keep
    run.say(f"autoencoder pretraining done after {run.config.train.pretrain_epochs} epochs: decoder reset, "
            f"annealing starts")


def save(run: Run, state: RunState) -> None:
    """Best weights for generation, plus the latest state for resuming (rank 0 only)."""
    if run.main:
        checkpoint.save(run.out, run.config, run.tokenizer, state.weights_to_keep(run.model),
                        state.train_state(run.model, run.optimizer), run.labels)
    state.last_save = time.monotonic()


def interrupted(run: Run, state: RunState) -> Interrupted:
    save(run, state)
    return Interrupted(f"interrupted at step {state.step}; resumable checkpoint written to {run.out}; "
                       f"continue with `vaegen train CORPUS --out {run.out} --resume`")


def save_after_failure(run: Run, state: RunState) -> None:
    """Training failed between steps or inside one before its update: the state is still that of the last good
    step, so it is saved (resumable) rather than losing the work since the last checkpoint."""
    try:
        save(run, state)
    except Exception as exc:  # noqa: BLE001 -- e.g. the disk is full: the original error matters more
        run.say(f"could not save the run after the failure ({exc.__class__.__name__}: {exc})")
    else:
        run.say(f"saved the run as it stood after step {state.step} to {run.out}; fix the cause and continue with "
                f"`vaegen train CORPUS --out {run.out} --resume`")
