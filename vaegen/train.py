"""Training, top to bottom: tokenizer, token ids, model, then one loop of steps and per-epoch validation.

Each step: beta from the annealing schedule, a length-grouped batch, word dropout on the decoder
inputs, forward, loss (free bits applied to the KL term), backward, gradient clipping, Adam at the
scheduled learning rate. Three remedies change the course of a run: autoencoder pretraining holds
beta at 0 for its epochs, then resets the decoder and starts the schedule; aggressive training
(He et al., 2019) gives each step encoder-only updates first, until validation MI stops rising; and
refinement epochs after the last one update the encoder alone at beta = 1 without free bits or word
dropout, the decoder in eval mode, so that q(z|x) fits the finished decoder under the very objective
that evaluation scores (free bits leave q wherever its floor binds, which loosens the bound). After
each epoch the model is scored on the validation lines at beta = 1 (-ELBO, KL, MI, active units). The
checkpoint file holds the best weights by validation -ELBO (what `sample` uses) and everything
needed to resume exactly where training stopped: the latest weights, Adam's state, both random
states, the step and the position in the epoch's batch order. It is rewritten after each epoch,
every `checkpoint_every` steps or `checkpoint_minutes`, and on Ctrl-C or SIGTERM, always atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vaegen import checkpoint, distributed
from vaegen.config import Config, TrainConfig, apply_overrides
from vaegen.data import collate, epoch_batches
from vaegen.errors import Interrupted, TrainingError
from vaegen.evaluation import ElboReport, evaluate_elbo
from vaegen.model import SentenceVAE
from vaegen.objectives import LossTerms, encoder_converged, kl_weight, vae_loss, word_dropout
from vaegen.token_cache import cache_dir, cached_encode, encode_lines
from vaegen.tokenizer import UNK_ID, Tokenizer
from vaegen.tunes import Labels


def metrics_path(out: Path) -> Path:
    """The JSON-lines metrics log that sits beside a checkpoint: run.pt -> run.metrics.jsonl."""
    return out.with_name(out.stem + ".metrics.jsonl")


def append_metrics(out: Path, record: dict[str, Any]) -> None:
    with metrics_path(out).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def rewind_metrics(out: Path, step: int) -> None:
    """Drop log records past `step`: a resumed run redoes those steps and logs them again."""
    path = metrics_path(out)
    if path.exists():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                if line.strip() and json.loads(line)["step"] <= step]
        path.write_text("".join(kept), encoding="utf-8")


def fingerprint(lines: list[str], labels: list[str] | None = None) -> str:
    """Identifies the training lines (and labels), so that a resumed run refuses a corpus that changed."""
    text = "\n".join(lines) if labels is None else "\n".join(f"{label}\t{line}" for label, line in zip(labels, lines))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


AGGRESSIVE_MAX_STEPS = 100  # encoder-only updates per decoder update at most (He et al., 2019)
RESUMABLE_KEYS = {"train.epochs", "train.max_steps", "train.log_every", "train.eval_every", "train.checkpoint_every",
                  "train.checkpoint_minutes", "train.max_nonfinite_skips", "train.refine_epochs"}


def load_resumable(out: Path, overrides: list[str]) -> tuple[Config, dict[str, Any]]:
    """The run saved at `out` and its config, where only RESUMABLE_KEYS may be overridden (e.g. more epochs)."""
    if not out.exists():
        raise TrainingError(f"nothing to resume: {out} does not exist; start a new run without --resume")
    payload = checkpoint.read(out)
    state = payload.get("train_state") or {}
    if "resume" not in state:
        raise TrainingError(f"{out} holds no training state to resume; start a new run with --force or another --out")
    config = apply_overrides(Config.from_dict(payload["config"], source=f"{out} config"), overrides, RESUMABLE_KEYS)
    epochs = config.train.epochs + config.train.refine_epochs
    if state["epoch"] >= epochs or (config.train.max_steps and state["step"] >= config.train.max_steps):
        raise TrainingError(f"the run in {out} is complete ({state['epoch']} epochs, {state['step']} steps); "
                            f"raise --epochs, --max-steps or train.refine_epochs to train further")
    return config, payload


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """The rate for the step after `step`: constant, or decaying to 0 at `total_steps`, which a fixed
    budget rewards (the last steps refine instead of bouncing around the minimum)."""
    done = min(step / max(total_steps, 1), 1.0)
    if config.lr_schedule == "linear":
        return config.lr * (1.0 - done)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * done))
    return config.lr


@dataclass
class TrainResult:
    best: ElboReport
    steps: int
    epochs: int
    seconds: float
    skipped: int


def fit(config: Config, train_lines: list[str], valid_lines: list[str], out: Path, device: torch.device,
        resume: dict[str, Any] | None = None, log: Callable[[str], None] | None = None,
        progress: bool = True, train_labels: list[str] | None = None,
        valid_labels: list[str] | None = None) -> TrainResult:
    """Train on the lines, writing `out` as described above; `resume` is a payload from `checkpoint.read`.
    A conditional model (model.label_dim > 0) takes a label per line (`train_labels`, `valid_labels`)."""
    distributed.setup(device)  # under torchrun: join the process group; alone: nothing
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0  # only rank 0 prints, logs and writes checkpoints
    log = (log or (lambda message: tqdm.write(message, file=sys.stderr))) if main else (lambda message: None)
    tc = config.train
    torch.manual_seed(tc.seed + rank)  # dropout masks
    noise = torch.Generator().manual_seed(tc.seed + rank)  # word dropout and the reparameterisation noise
    conditional = config.model.label_dim > 0
    if conditional != (train_labels is not None and valid_labels is not None):
        raise TrainingError("model.label_dim > 0 trains on labelled lines ('label<TAB>text') and needs labels for "
                            "both the training and the validation lines; 0 trains on plain lines")
    corpus = fingerprint(train_lines, train_labels)

    if resume is None:
        trained = None
        if main:
            trained, choice = Tokenizer.train(train_lines, config.tokenizer)
            log(f"tokenizer: {choice.model_type} model, {choice.vocab_size} pieces, character coverage "
                f"{choice.character_coverage} ({choice.cjk_share:.0%} of characters are CJK)")
        tokenizer = Tokenizer(distributed.broadcast(trained.model_bytes if trained else None))
    else:
        tokenizer = Tokenizer(resume["tokenizer"])
    train_ids, train_cut, cached = cached_encode(tokenizer, train_lines, corpus, config.data.max_length)
    valid_ids, valid_cut = encode_lines(tokenizer, valid_lines, config.data.max_length)
    if cached:
        log(f"token ids of the {len(train_ids):,} training lines read from the cache in {cache_dir()}")
    if train_cut or valid_cut:
        log(f"truncated {train_cut} training and {valid_cut} validation lines to data.max_length = "
            f"{config.data.max_length} tokens")
    lengths = train_ids.lengths
    labels = None
    train_label_ids = valid_label_ids = None
    if train_labels is not None and valid_labels is not None:
        labels = (Labels.from_payload(resume["labels"]) if resume is not None
                  else Labels.learn(train_labels, train_lines, config.data.min_label_count))
        train_label_ids, valid_label_ids = labels.ids(train_labels), labels.ids(valid_labels)
        log(f"labels: {len(labels.known)} seen at least data.min_label_count = {config.data.min_label_count} times; "
            f"the {sum(i == Labels.OTHER for i in train_label_ids):,} training lines of rarer ones share one 'other' label")

    model = SentenceVAE(config.model, tokenizer.vocab_size, len(labels) if labels is not None else 0).to(device)
    replicated = distributed.wrap(model)  # the same module, gradients averaged across ranks under torchrun
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, fused=True)  # one kernel for all parameters
    low_precision = tc.precision == "bf16"
    dtype = torch.bfloat16 if low_precision else torch.float32
    step = epoch = position = skipped = 0  # position: batches of the current epoch already done
    seconds, best, best_weights = 0.0, None, None
    aggressive = tc.aggressive_epochs > 0 and config.model.latent_dim > 0  # ends when validation MI stops rising
    previous_mi: float | None = None
    if resume is None:
        log(f"model: {sum(p.numel() for p in model.parameters()):,} parameters on {device}"
            + (f", {world} processes" if world > 1 else ""))
        if main:
            metrics_path(out).write_text("", encoding="utf-8")  # a new run starts a new log
    else:
        state = resume["train_state"]
        if state["corpus"] != corpus:
            raise TrainingError(f"the training lines differ from those {out} was trained on; "
                                f"resume with the same corpus, or start a new run with --force")
        model.load_state_dict(state["resume"]["model"])
        optimizer.load_state_dict(state["resume"]["optimizer"])
        torch.set_rng_state(state["resume"]["rng"])
        noise.set_state(state["resume"]["noise"])
        step, epoch, position, skipped, seconds = (state[k] for k in ("step", "epoch", "position", "skipped", "seconds"))
        aggressive, previous_mi = state.get("aggressive", aggressive), state.get("previous_mi")
        if state["valid"] is not None:
            best, best_weights = ElboReport(**state["valid"]), resume["model"]
        if rank:  # the checkpoint holds rank 0's random streams; the others restart theirs from the step
            torch.manual_seed(tc.seed + rank + step)
            noise.manual_seed(tc.seed + rank + step)
        if main:
            rewind_metrics(out, step)
        log(f"resuming at step {step} (epoch {epoch + 1}, batch {position + 1})")
    started = time.perf_counter() - seconds

    def save() -> None:
        """Best weights for generation, plus the latest state for resuming (rank 0 only)."""
        if not main:
            return
        weights = best_weights if best_weights is not None else model.state_dict()
        checkpoint.save(out, config, tokenizer, weights, {
            "step": step, "epoch": epoch, "position": position, "skipped": skipped, "corpus": corpus,
            "seconds": time.perf_counter() - started, "valid": best.as_dict() if best else None,
            "aggressive": aggressive, "previous_mi": previous_mi,
            "resume": {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "rng": torch.get_rng_state(), "noise": noise.get_state()},
        }, labels)

    def finished() -> bool:
        return epoch >= tc.epochs + tc.refine_epochs or bool(tc.max_steps and step >= tc.max_steps)

    def interrupted() -> Interrupted:
        save()
        return Interrupted(f"interrupted at step {step}; resumable checkpoint written to {out}; "
                           f"continue with `vaegen train CORPUS --out {out} --resume`")

    last_save = time.monotonic()

    def end_aggressive_phase(report: ElboReport) -> None:
        """At an epoch end: aggressive updates stop once validation MI stops rising or their epochs are spent."""
        nonlocal aggressive, previous_mi
        spent = epoch >= tc.pretrain_epochs + tc.aggressive_epochs
        if spent or (previous_mi is not None and report.mi <= previous_mi):
            aggressive = False
            log(f"aggressive encoder updates end after epoch {epoch} (validation MI {report.mi:.2f}"
                + (f", before {previous_mi:.2f})" if previous_mi is not None else ")"))
        previous_mi = report.mi

    def validate(label: str, aggressive_epoch_ended: bool = False) -> None:
        """Score at beta = 1, keep the best weights, log, decide on aggressive updates, write the checkpoint."""
        nonlocal best, best_weights, last_save
        report = evaluate_elbo(model, valid_ids, tc.batch_size, device, labels=valid_label_ids)
        improved = best is None or report.elbo < best.elbo
        if improved:
            best = report
            best_weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        log(f"{label} step {step} valid: NLL {report.rec:.2f}  KL {report.kl:.2f}  -ELBO {report.elbo:.2f} "
            f"nats/sentence, ppl <= {report.ppl:.2f} per token, MI {report.mi:.2f}, "
            f"active units {report.au}/{config.model.latent_dim}"
            + ("  (best)" if improved else ""))
        if main:
            append_metrics(out, {"kind": "valid", "step": step, "epoch": epoch,
                                 "seconds": time.perf_counter() - started, **report.as_dict()})
        if aggressive_epoch_ended:
            end_aggressive_phase(report)
        save()
        last_save = time.monotonic()

    def reset_decoder() -> None:
        """End of autoencoder pretraining: a fresh decoder, identical on every rank, with fresh Adam moments."""
        nonlocal best, best_weights
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tc.seed)
            for parameter in model.reset_decoder():
                optimizer.state.pop(parameter, None)
        best, best_weights = None, None  # the autoencoder's weights are no VAE to keep
        log(f"autoencoder pretraining done after {tc.pretrain_epochs} epochs: decoder reset, annealing starts")

    def batch_terms(indices: list[int], beta: float, plain: bool = False) -> LossTerms:
        """Forward this rank's share of a global batch, word dropout and fresh noise included, to its loss terms;
        `plain`: the evaluated objective, without word dropout or free bits."""
        share = indices[rank::world] or indices[:1]
        share_labels = None if train_label_ids is None else [train_label_ids[i] for i in share]
        batch = collate([train_ids[i] for i in share], share_labels).to(device)
        inputs = word_dropout(batch.decoder_inputs, 0.0 if plain else tc.word_dropout, UNK_ID, noise)
        eps = torch.randn(len(share), config.model.latent_dim, generator=noise).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low_precision):
            output = replicated(batch.tokens, batch.lengths, inputs, eps, batch.labels)
        return vae_loss(output.hidden, model.output.weight, model.output.bias, batch.tokens, output.mu, output.logvar,
                        beta, dtype, 0.0 if plain else tc.free_bits, tc.free_bits_per_example)

    def update(loss: torch.Tensor, rate: float, moving: set[int] | None = None) -> None:
        """One clipped Adam step at `rate`; with `moving`, only the parameters whose ids it holds change."""
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if moving is not None:
            for parameter in model.parameters():
                if id(parameter) not in moving:
                    parameter.grad = None  # Adam leaves parameters without a gradient alone
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()

    encoder_side = {id(p) for p in model.encoder_parameters()}
    decoder_side = {id(p) for p in model.parameters()} - encoder_side

    def encoder_steps(indices: list[int], beta: float, rate: float) -> int:
        """He et al. (2019): update the encoder alone, on this batch and then fresh random ones, until its loss
        stops falling (at most AGGRESSIVE_MAX_STEPS); returns how many updates it took."""
        losses: list[float] = []
        while len(losses) < AGGRESSIVE_MAX_STEPS and not encoder_converged(losses):
            terms = batch_terms(indices, beta)
            loss = distributed.agree(terms.loss.item(), False, device)[0]  # every rank stops at the same step
            if not math.isfinite(loss):
                break
            losses.append(loss)
            update(terms.loss, rate, encoder_side)
            indices = torch.randint(len(lengths), (tc.batch_size,), generator=noise).tolist()
        return len(losses)

    steps_per_epoch = math.ceil(len(lengths) / tc.batch_size)
    pretrain_steps = tc.pretrain_epochs * steps_per_epoch  # beta is 0 before, the schedule starts after
    main_steps = tc.epochs * steps_per_epoch  # any refinement epochs come after these
    total_steps = min(main_steps, tc.max_steps or main_steps)  # what the learning-rate schedule spans
    refine_steps = tc.refine_epochs * steps_per_epoch
    with stop_on_signal() as stop:
        while not finished():
            if pretrain_steps and step == pretrain_steps:  # an epoch boundary: pretraining is whole epochs
                reset_decoder()
            batches = epoch_batches(lengths, tc.batch_size, tc.seed, epoch)
            bar = tqdm(batches[position:], initial=position, total=len(batches), unit="batch",
                       desc=f"epoch {epoch + 1}/{tc.epochs + tc.refine_epochs}", disable=not progress, dynamic_ncols=True)
            window_steps, window_tokens, window_sentences, window_start = 0, 0, 0, time.perf_counter()
            window_encoder_steps = 0
            aggressive_now = aggressive and tc.pretrain_epochs <= epoch < tc.epochs  # after any pretraining
            refining = epoch >= tc.epochs
            model.train(not refining)  # refinement fits q to the decoder as evaluation runs it: no dropout
            if refining and position == 0:
                log(f"refinement epoch {epoch + 1 - tc.epochs}/{tc.refine_epochs}: the encoder alone, at beta = 1 "
                    f"without free bits or word dropout")
            for indices in bar:
                if refining:  # beta = 1, and the schedule's shape again over the refinement's own steps
                    beta, rate = 1.0, learning_rate(step - main_steps, refine_steps, tc)
                else:
                    beta = kl_weight(step - pretrain_steps, config.anneal) if step >= pretrain_steps else 0.0
                    rate = learning_rate(step, total_steps, tc)
                if aggressive_now:
                    window_encoder_steps += encoder_steps(indices, beta, rate)
                terms = batch_terms(indices, beta, plain=refining)
                loss, stop_now = distributed.agree(terms.loss.item(), stop.requested, device)
                if math.isfinite(loss):
                    update(terms.loss, rate, encoder_side if refining else decoder_side if aggressive_now else None)
                else:
                    skipped += 1
                    if skipped > tc.max_nonfinite_skips:
                        raise TrainingError(
                            f"the loss became {loss} at step {step + 1}; {out} keeps the last good checkpoint; "
                            f"lower train.lr or train.grad_clip, or allow skips with train.max_nonfinite_skips")
                    log(f"skipped step {step + 1}: the loss became {loss} ({skipped} skipped so far)")
                step, position = step + 1, position + 1

                window_steps += 1
                window_tokens += int(lengths[indices].sum()) + len(indices)  # the global batch, </s> included
                window_sentences += len(indices)
                if step % 10 == 0 or step % tc.log_every == 0:
                    elapsed = time.perf_counter() - window_start
                    record = {"kind": "train", "step": step, "epoch": epoch + 1, "loss": loss,
                              "rec": terms.rec.mean().item(), "kl": terms.kl.mean().item(), "beta": beta,
                              "tokens_per_s": window_tokens / elapsed, "sentences_per_s": window_sentences / elapsed,
                              "ms_per_step": 1000 * elapsed / window_steps}
                    if aggressive_now:
                        record["encoder_steps"] = window_encoder_steps / window_steps
                    bar.set_postfix(loss=f"{loss:.2f}", nll=f"{record['rec']:.2f}", kl=f"{record['kl']:.2f}",
                                    beta=f"{beta:.3f}", tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                    if step % tc.log_every == 0 and main:
                        append_metrics(out, record)
                    window_steps, window_tokens, window_sentences, window_start = 0, 0, 0, time.perf_counter()
                    window_encoder_steps = 0
                if stop_now:
                    bar.close()
                    raise interrupted()
                if tc.eval_every and step % tc.eval_every == 0 and position < len(batches):
                    validate(f"epoch {epoch + 1} (batch {position}/{len(batches)})")
                elif (tc.checkpoint_every and step % tc.checkpoint_every == 0) or (
                        tc.checkpoint_minutes and time.monotonic() - last_save >= 60 * tc.checkpoint_minutes):
                    save()
                    last_save = time.monotonic()
                if finished():
                    break
            bar.close()
            label = f"epoch {epoch + 1}" + ("" if position == len(batches) else f" (batch {position}/{len(batches)})")
            end_of_epoch = position == len(batches)
            if end_of_epoch:
                epoch, position = epoch + 1, 0
            validate(label, aggressive_epoch_ended=aggressive_now and end_of_epoch)
            if distributed.agree(0.0, stop.requested, device)[1]:
                raise interrupted()
    assert best is not None  # the loop ran at least once: resuming a finished run is refused before fit
    distributed.check_replicas_agree(model, device)
    if world > 1:
        log(f"weights identical on all {world} ranks")
    distributed.teardown()
    return TrainResult(best, step, epoch, time.perf_counter() - started, skipped)
