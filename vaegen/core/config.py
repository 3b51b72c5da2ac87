"""Every hyperparameter of vaegen, with its default, in one place.

A `Config` groups one dataclass per concern (data, tokenizer, model, anneal, train). Presets in
`configs/*.toml` and `--set section.key=value` overrides are applied on top of the defaults and
validated here, so a typo or a bad value is refused before any work starts. This module imports
no torch, so the CLI's `--help` stays fast.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaegen.core.errors import ConfigError

TOKENIZER_MODELS = ("auto", "unigram", "bpe", "char", "word")
ANNEAL_SCHEDULES = ("logistic", "linear", "cyclical", "constant")
PRECISIONS = ("fp32", "bf16", "auto")  # auto: bf16 where the device has native bfloat16 arithmetic, else fp32
LR_SCHEDULES = ("constant", "linear", "cosine")
INTERPOLATION_PATHS = ("linear", "slerp")  # straight line, great circle (vaegen.generate.latent.path)
# The default decoding of the sampling commands and of `vaegen serve`, when nothing else shapes sampling: of the
# strategies measured, the one closest to held-out human text in judge perplexity and distinct-2
# (`fluency.human_gap`), and the only one within both tolerances for the Song ci lines model (docs/BENCHMARKS.md,
# "Fluency and decoding strategies")
SAMPLING_TEMPERATURE = 0.85
SAMPLING_TOP_P = 1.0
# Sentences on the map `vaegen serve` draws: its axes need a few codes, and each costs a decoding at the first start
MAP_POINTS, MIN_MAP_POINTS, MAX_MAP_POINTS = 1_000, 10, 5_000


@dataclass
class DataConfig:
    max_length: int = 64  # tokens per sentence; longer sentences are truncated (and counted)
    valid_fraction: float = 0.05  # held-out share of the corpus when no --valid file is given
    min_valid_lines: int = 1
    max_line_chars: int = 100_000  # a longer line is refused: the file is probably not one example per line
    min_label_count: int = 2  # conditional models: rarer labels share one "other" label (and unseen ones)


@dataclass
class TokenizerConfig:
    model_type: str = "auto"  # auto: char for a mostly-CJK corpus, unigram otherwise
    vocab_size: int = 8000  # learned pieces, an upper bound: small corpora get what they can fill
    byte_fallback: bool = True  # adds 256 byte pieces: characters outside the vocabulary stay exact
    character_coverage: float = 0.0  # 0: 0.9995 for CJK corpora, 1.0 otherwise
    sample_lines: int = 2_000_000  # the tokenizer learns from at most this many lines


@dataclass
class ModelConfig:
    embed_dim: int = 256
    hidden_dim: int = 256  # the decoder's GRU
    encoder_dim: int = 0  # the encoder's GRU per direction; 0: hidden_dim. A wide decoder need not pay for a wide encoder
    latent_dim: int = 32  # 0: no encoder, no latent code: the decoder alone, an RNN language model
    encoder_layers: int = 1
    bidirectional: bool = True
    decoder_layers: int = 1
    z_to_init: bool = True  # z sets the decoder's initial hidden state
    z_every_step: bool = True  # z is concatenated to every decoder input
    embed_dropout: float = 0.2  # on the decoder's input embeddings (the encoder reads every word)
    output_dropout: float = 0.0  # on the decoder's states before the output layer
    weight_drop: float = 0.0  # DropConnect on the decoder GRU's recurrent weights (Merity et al., 2018); 0 = off
    tie_embeddings: bool = False  # the output layer reuses the embedding matrix (needs embed_dim == hidden_dim)
    bn_gamma: float = 0.0  # BN-VAE (Zhu et al., 2020): batch-normalised posterior means with this fixed scale; 0 = off
    label_dim: int = 0  # > 0: conditional VAE on "label<TAB>text" lines; the label's embedding (Song ci: the tune)
    form_dim: int = 0  # > 0: the decoder reads where it stands in the ci's form at every step (vaegen.songci.form_inputs)
    # The output layer: 0, a full softmax over the vocabulary; N > 0, an adaptive softmax (Grave et al., 2017) whose
    # head scores the N most frequent tokens of the training corpus, the rest in clusters each 4x larger at 1/4 the
    # dimension. Exact either way (a normalised distribution); the adaptive one costs a fraction of the full one.
    # -1: chosen by the vocabulary when the model is built (`model.output_head_for`), and saved as chosen
    output_head: int = -1


@dataclass
class AnnealConfig:
    schedule: str = "logistic"
    k: float = 0.0025  # logistic slope (Bowman et al.)
    x0: int = 0  # logistic midpoint, in steps; 0: midpoint_share of the run's annealed steps
    warmup_steps: int = 0  # linear: steps from 0 to beta_max; 0: twice the midpoint above
    period: int = 0  # cyclical: steps per cycle (Fu et al., 2019); 0: four cycles over the run
    midpoint_share: float = 0.25  # where an unset midpoint falls, as a share of the steps after any pretraining
    ratio: float = 0.5  # cyclical: share of each cycle spent increasing beta
    beta_max: float = 1.0  # the weight every schedule rises to (constant: the weight)


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int = 0  # 0: no limit besides epochs
    batch_size: int = 32
    lr: float = 1e-3
    lr_schedule: str = "constant"  # linear or cosine: decay to 0 at the run's last step (epochs or max_steps)
    grad_clip: float = 5.0
    word_dropout: float = 0.25  # share of decoder inputs replaced by <unk> (Bowman et al.)
    free_bits: float = 0.0  # nats per latent dimension that cost nothing to use (Kingma et al., 2016); 0 = off
    free_bits_per_example: bool = False  # judge each example's dimensions alone (Li et al., 2019), not the batch mean
    kl_target: float = 0.0  # nats of the whole code's KL per sentence that cost nothing (free bits as one group); 0 = off
    pretrain_epochs: int = 0  # autoencoder epochs (beta = 0) before a decoder reset and the VAE (Li et al., 2019)
    aggressive_epochs: int = 0  # at most this many epochs of aggressive encoder updates (He et al., 2019); 0 = off
    refine_epochs: int = 0  # encoder-only epochs after `epochs`, at beta = 1 without free bits or word dropout
    precision: str = "fp32"  # bf16 products (native only: devices.py) or auto (bf16 where native); validation: fp32
    seed: int = 0
    log_every: int = 100  # steps between training lines in the metrics log
    eval_every: int = 0  # steps between validations inside an epoch (0: at epoch ends only)
    checkpoint_every: int = 0  # steps between resumable checkpoints (0: off)
    checkpoint_minutes: float = 10.0  # minutes between resumable checkpoints (0: off)
    max_nonfinite_skips: int = 0  # batches with a NaN or infinite loss to skip before stopping


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    anneal: AnnealConfig = field(default_factory=AnnealConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> Config:
        """Build a validated config from nested plain values; missing keys keep their defaults."""
        config = cls()
        for section, entries in values.items():
            if not isinstance(entries, dict):
                raise ConfigError(f"{source}: '{section}' must be a [section] table")
            for key, value in entries.items():
                _assign(config, section, key, value, source)
        validate(config)
        return config


def _section(config: Config, section: str, source: str) -> Any:
    names = [f.name for f in dataclasses.fields(config)]
    if section not in names:
        raise ConfigError(f"{source}: unknown section '{section}'; known sections: {', '.join(names)}")
    return getattr(config, section)


def _assign(config: Config, section: str, key: str, value: Any, source: str) -> None:
    """Set section.key after checking that the key exists and the value has the default's type."""
    target = _section(config, section, source)
    fields = {f.name: f for f in dataclasses.fields(target)}
    if key not in fields:
        raise ConfigError(
            f"{source}: unknown key '{section}.{key}'; keys of [{section}]: {', '.join(fields)}"
        )
    expected = type(getattr(target, key))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise ConfigError(
            f"{source}: '{section}.{key}' must be {expected.__name__}, got {value!r}"
        )
    setattr(target, key, value)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(config: Config) -> None:
    """Refuse values that would fail later or silently do nothing useful."""
    d, t, m, a, tr = config.data, config.tokenizer, config.model, config.anneal, config.train
    _check(d.max_length >= 1, "data.max_length must be at least 1")
    _check(0.0 < d.valid_fraction < 1.0, "data.valid_fraction must lie strictly between 0 and 1")
    _check(d.min_valid_lines >= 1, "data.min_valid_lines must be at least 1")
    _check(d.max_line_chars >= 1, "data.max_line_chars must be at least 1")
    _check(d.min_label_count >= 1, "data.min_label_count must be at least 1")
    _check(t.model_type in TOKENIZER_MODELS, f"tokenizer.model_type must be one of {', '.join(TOKENIZER_MODELS)}")
    _check(t.vocab_size >= 8, "tokenizer.vocab_size must be at least 8")
    _check(0.0 <= t.character_coverage <= 1.0, "tokenizer.character_coverage must lie in [0, 1] (0 = automatic)")
    _check(t.sample_lines >= 1, "tokenizer.sample_lines must be at least 1")
    for name in ("embed_dim", "hidden_dim", "encoder_layers", "decoder_layers"):
        _check(getattr(m, name) >= 1, f"model.{name} must be at least 1")
    _check(m.encoder_dim >= 0, "model.encoder_dim must not be negative (0 = hidden_dim)")
    _check(m.latent_dim >= 0, "model.latent_dim must not be negative (0 = a language model without a latent code)")
    _check(all(0.0 <= getattr(m, name) < 1.0 for name in ("embed_dropout", "output_dropout", "weight_drop")),
           "model.embed_dropout, model.output_dropout and model.weight_drop must lie in [0, 1)")
    _check(not m.tie_embeddings or m.embed_dim == m.hidden_dim,
           "model.tie_embeddings needs model.embed_dim equal to model.hidden_dim")
    _check(m.bn_gamma >= 0.0, "model.bn_gamma must not be negative (0 = off)")
    _check(m.label_dim >= 0, "model.label_dim must not be negative (0 = no labels)")
    _check(m.form_dim >= 0, "model.form_dim must not be negative (0 = no form inputs)")
    _check(m.output_head >= -1, "model.output_head must be -1 (chosen by the vocabulary), 0 (a full softmax) or a "
           "head size")
    _check(not (m.output_head > 0 and m.tie_embeddings),
           "model.output_head (an adaptive softmax) has no matrix to share: set model.tie_embeddings = false")
    _check(a.schedule in ANNEAL_SCHEDULES, f"anneal.schedule must be one of {', '.join(ANNEAL_SCHEDULES)}")
    _check(a.k > 0, "anneal.k must be positive")
    _check(min(a.x0, a.warmup_steps, a.period) >= 0,
           "anneal.x0, anneal.warmup_steps and anneal.period must not be negative (0 = scaled to the run)")
    _check(0.0 < a.midpoint_share <= 1.0, "anneal.midpoint_share must lie in (0, 1]")
    _check(0.0 < a.ratio <= 1.0, "anneal.ratio must lie in (0, 1]")
    _check(a.beta_max >= 0.0, "anneal.beta_max must not be negative")
    _check(tr.epochs >= 1, "train.epochs must be at least 1")
    _check(tr.max_steps >= 0, "train.max_steps must not be negative (0 = no limit)")
    _check(tr.batch_size >= 1, "train.batch_size must be at least 1")
    _check(tr.lr > 0, "train.lr must be positive")
    _check(tr.lr_schedule in LR_SCHEDULES, f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
    _check(tr.grad_clip > 0, "train.grad_clip must be positive")
    _check(0.0 <= tr.word_dropout <= 1.0, "train.word_dropout must lie in [0, 1]")
    _check(tr.free_bits >= 0.0, "train.free_bits must not be negative (0 = off)")
    _check(tr.kl_target >= 0.0, "train.kl_target must not be negative (0 = off)")
    _check(not (tr.free_bits and tr.kl_target), "train.free_bits and train.kl_target are two floors for the same KL: "
           "set one of them to 0")
    _check(0 <= tr.pretrain_epochs < tr.epochs, "train.pretrain_epochs must lie in [0, train.epochs)")
    _check(tr.aggressive_epochs >= 0, "train.aggressive_epochs must not be negative (0 = off)")
    _check(tr.refine_epochs >= 0, "train.refine_epochs must not be negative (0 = off)")
    _check(not tr.refine_epochs or config.model.latent_dim > 0, "train.refine_epochs needs a latent code "
           "(model.latent_dim > 0): without one there is no encoder to refine")
    _check(tr.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}")
    _check(tr.log_every >= 1, "train.log_every must be at least 1")
    _check(tr.eval_every >= 0, "train.eval_every must not be negative (0 = at epoch ends only)")
    _check(tr.checkpoint_every >= 0 and tr.checkpoint_minutes >= 0,
           "train.checkpoint_every and train.checkpoint_minutes must not be negative (0 = off)")
    _check(tr.max_nonfinite_skips >= 0, "train.max_nonfinite_skips must not be negative")


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split 'section.key=value'; the value is read as TOML, or as a bare string if it is not TOML."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"--set '{text}' must look like section.key=value, e.g. train.lr=0.001")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key.strip(), value


def apply_overrides(config: Config, overrides: list[str], allowed: set[str] | None = None) -> Config:
    """Apply `section.key=value` overrides in order (only keys in `allowed`, when given) and validate."""
    for text in overrides:
        section, key, value = parse_override(text)
        if allowed is not None and f"{section}.{key}" not in allowed:
            raise ConfigError(f"'{section}.{key}' cannot change when resuming; only {', '.join(sorted(allowed))} can")
        _assign(config, section, key, value, source="--set")
    validate(config)
    return config


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the TOML preset at `path`, then each `section.key=value` override."""
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; presets live in configs/ (e.g. configs/tiny.toml)")
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.__class__.__name__}; pass a UTF-8 TOML file")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}")
    return apply_overrides(Config.from_dict(values, source=str(path) if path else "config"), overrides or [])
