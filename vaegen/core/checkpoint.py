"""The one checkpoint file every command reads: config, tokenizer bytes, weights, training state.

The file is a `torch.save` of plain values and tensors only, so it loads with
`torch.load(weights_only=True)`: a file that tries to run code is refused, not executed. Writes are atomic
(`files.write_atomically`), so a crash at any moment leaves either the old file or the new one,
never half of one. See docs/checkpoint.md.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch

from vaegen.core import shipped
from vaegen.core.config import Config
from vaegen.core.errors import CheckpointError, ConfigError
from vaegen.core.files import write_atomically
from vaegen.core.labels import Labels
from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import Tokenizer

FORMAT = "vaegen-checkpoint"
# 2 added "labels" (conditional models), version 1 files reading as models without labels; 3: a form-aware decoder
# (model.form_dim > 0) reads the first rhyme's group and scores characters for it, so its version 2 files cannot be read;
# 4: "scales", int8 weights stored with one float scale per row (`export(..., storage="int8")`)
VERSION = 4
STORAGES = ("float32", "float16", "int8")  # how `export` stores the weights
TRAIN_HINT = "train one with `vaegen train CORPUS` or pass --checkpoint FILE"
BUNDLED = shipped.find(shipped.DEFAULT).file  # see vaegen/models/README.md
BUNDLED_TUNES = shipped.find(shipped.DEFAULT_TUNES).file  # whole ci by tune: what --tune and `vaegen tunes` fall back to


def save(path: Path, config: Config, tokenizer: Tokenizer, weights: dict[str, torch.Tensor],
         train_state: dict[str, Any], labels: Labels | None = None) -> None:
    """Write atomically: temporary file, fsync, rename. `weights` is a model state_dict; `labels` those of
    a conditional model."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "tokenizer": tokenizer.model_bytes,
        "labels": labels.as_payload() if labels is not None else None,
        "model": {name: tensor.detach().cpu() for name, tensor in weights.items()},
        "train_state": train_state,
    }
    write_atomically(path, lambda handle: torch.save(payload, handle))


def quantize(weights: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Each floating matrix as int8 with one float32 scale per row (its largest magnitude / 127), so a row of
    small weights keeps its precision beside a row of large ones; vectors (biases) in float16. Returns the
    weights and the scales, by name."""
    stored: dict[str, torch.Tensor] = {}
    scales: dict[str, torch.Tensor] = {}
    for name, tensor in weights.items():
        if not tensor.is_floating_point():
            stored[name] = tensor
        elif tensor.dim() < 2:
            stored[name] = tensor.half()
        else:
            rows = tensor.float().flatten(1)
            scale = rows.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127
            stored[name] = (rows / scale[:, None]).round().to(torch.int8).view(tensor.shape)
            scales[name] = scale
    return stored, scales


def dequantize(weights: dict[str, torch.Tensor], scales: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 weights that `quantize` stored: each int8 row times its scale."""
    return {name: (tensor.float().flatten(1) * scales[name][:, None]).view(tensor.shape) if name in scales
            else tensor for name, tensor in weights.items()}


def export(source: Path, target: Path, storage: str = "float32") -> None:
    """Write a checkpoint for generation alone: the best weights (stored as `storage`, one of STORAGES), config,
    tokenizer and the record of how training went, without the state for resuming (the latest weights and
    Adam's moments, two thirds of a training checkpoint)."""
    if storage not in STORAGES:
        raise CheckpointError(f"weights cannot be stored as {storage!r}; choose one of {', '.join(STORAGES)}")
    payload = read(source)
    kept = {key: payload.get("train_state", {}).get(key) for key in ("step", "epoch", "seconds", "corpus", "valid")}
    weights = dequantize(payload["model"], payload.get("scales") or {})
    scales: dict[str, torch.Tensor] = {}
    if storage == "int8":
        weights, scales = quantize(weights)
    elif storage == "float16":
        weights = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in weights.items()}
    version = VERSION if scales else payload["version"]  # a reader before int8 storage reads the others
    exported = {**payload, "version": version, "model": weights, "scales": scales or None, "train_state": kept}
    write_atomically(target, lambda handle: torch.save(exported, handle))


def _calls_code(path: Path) -> bool:
    """Whether a plain pickle would call a function when loaded; pickletools only reads opcodes, runs nothing."""
    calls = {"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"}
    try:
        with path.open("rb") as handle:
            return any(opcode.name in calls for opcode, _, _ in pickletools.genops(handle))
    except Exception:  # noqa: BLE001 -- not a well-formed pickle: random bytes, a cut file
        return False


def read(path: Path) -> dict[str, Any]:
    """Load and check the payload, turning every way a file can be wrong into a CheckpointError."""
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; {TRAIN_HINT}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; pass the .pt file written by `vaegen train`")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path} ({exc.strerror}); check its permissions")
    with handle:
        try:
            with warnings.catch_warnings():  # torch warns about foreign pickle protocols; the errors below say more
                warnings.simplefilter("ignore")
                payload = torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "GLOBAL" in str(exc) or _calls_code(path):
                raise CheckpointError(f"refused to load {path}: it holds Python objects that would run code; "
                                      f"vaegen loads only its own checkpoints")
            raise CheckpointError(f"{path} is not a readable vaegen checkpoint (damaged or not a checkpoint); retrain or re-download it")
        except Exception:  # noqa: BLE001 -- torch raises many types for a cut or corrupted archive
            raise CheckpointError(f"{path} is not a readable vaegen checkpoint (truncated or damaged); retrain or re-download it")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vaegen checkpoint (no vaegen format tag); pass a file written by `vaegen train`")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version!r}, newer than this vaegen reads ({VERSION}); upgrade vaegen")
    return payload


class Loaded(NamedTuple):
    config: Config
    tokenizer: Tokenizer
    model: SentenceVAE
    train_state: dict[str, Any]
    labels: Labels | None  # a conditional model's labels


def saved_config(payload: dict[str, Any], path: Path) -> Config:
    """The config a checkpoint was written with, or a one-line refusal of a model this vaegen cannot rebuild. Files
    from before the adaptive output layer have no model.output_head: theirs is a full softmax (0), not today's
    default, which is chosen by the vocabulary."""
    values = payload["config"]
    if isinstance(values, dict) and isinstance(values.get("model"), dict):
        values = {**values, "model": {"output_head": 0, **values["model"]}}
    config = Config.from_dict(values, source=f"{path} config")
    if config.model.form_dim and payload["version"] < 3:
        raise CheckpointError(f"{path} holds a form-aware model of checkpoint format {payload['version']}, whose "
                              "decoder read the first rhyme's character; this vaegen's reads its rhyme group: "
                              "retrain it (vaegen train ... --config configs/songci-ci.toml)")
    return config


def load(path: Path, device: torch.device | str = "cpu") -> Loaded:
    """A ready model (in eval mode, on `device`) with its tokenizer and config; no other file needed."""
    payload = read(path)
    try:
        config = saved_config(payload, path)
        tokenizer = Tokenizer(bytes(payload["tokenizer"]))
        labels = Labels.from_payload(payload["labels"]) if payload.get("labels") is not None else None
        model = SentenceVAE(config.model, tokenizer.vocab_size, len(labels) if labels is not None else 0)
        model.load_state_dict(dequantize(payload["model"], payload.get("scales") or {}))
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
        raise CheckpointError(f"{path} is a damaged vaegen checkpoint ({str(exc).splitlines()[0]}); retrain or re-download it")
    return Loaded(config, tokenizer, model.to(device).eval(), payload.get("train_state", {}), labels)


def shipped_note(named: Path | None, model: str | None, location: Path) -> str | None:
    """What to tell a user who named no model or checkpoint and got one that ships with vaegen; else None."""
    if named is not None or model is not None or location not in (BUNDLED, BUNDLED_TUNES):
        return None
    which = "whole Song ci by tune" if location == BUNDLED_TUNES else "Song ci lines"
    return (f"no --model, --checkpoint, $VAEGEN_CHECKPOINT or ./vaegen.pt: using the {which} model that ships with "
            "vaegen (`vaegen models` lists the others); train your own with `vaegen train CORPUS`")


def locate(path: Path | None, by_tune: bool = False, model: str | None = None) -> Path:
    """The checkpoint to use: the one named, else the shipped model named (`model`), else $VAEGEN_CHECKPOINT,
    else ./vaegen.pt, else a Song ci model that ships with vaegen, so that generation works right after
    installation: the lines model (BUNDLED), or where a tune is asked for (`by_tune`), the model of whole ci
    by tune (BUNDLED_TUNES)."""
    if path is not None and model is not None:
        raise CheckpointError("--checkpoint and --model both name a model; give one of them")
    if path is not None:
        return path
    if model is not None:
        return shipped.find(model).file
    if env := os.environ.get("VAEGEN_CHECKPOINT"):
        return Path(env)
    default = Path("vaegen.pt")
    if default.exists():
        return default
    bundled = BUNDLED_TUNES if by_tune else BUNDLED
    if bundled.exists():
        return bundled
    raise CheckpointError(f"no checkpoint: neither --model, --checkpoint, $VAEGEN_CHECKPOINT nor ./vaegen.pt; {TRAIN_HINT}")
