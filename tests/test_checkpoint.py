"""The checkpoint file: round trips, atomic writes, and refusal of every file that is not ours."""

import os
import pickle
import random
from pathlib import Path

import pytest
import torch

import vaegen
from vaegen.core import checkpoint, files
from vaegen.core.data import collate
from vaegen.core.errors import CheckpointError, TrainingError
from vaegen.train.resume import load_resumable


def test_round_trip_gives_identical_outputs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    loaded = checkpoint.load(tiny_checkpoint)
    copy = tmp_path / "copy.pt"
    checkpoint.save(copy, loaded.config, loaded.tokenizer, loaded.model.state_dict(), loaded.train_state)
    again = checkpoint.load(copy)
    assert again.config == loaded.config and again.tokenizer.model_bytes == loaded.tokenizer.model_bytes
    batch = collate(loaded.tokenizer.encode(["a dog sees the river .", "the cat paints an open door again ."]))
    first = loaded.model(batch.tokens, batch.lengths, batch.decoder_inputs, None)
    second = again.model(batch.tokens, batch.lengths, batch.decoder_inputs, None)
    assert torch.equal(first.hidden, second.hidden) and torch.equal(first.mu, second.mu)
    assert vaegen.load(copy, "cpu").sample(5, seed=3) == vaegen.load(tiny_checkpoint, "cpu").sample(5, seed=3)


def test_file_holds_only_plain_values(tiny_checkpoint: Path) -> None:
    payload = torch.load(tiny_checkpoint, weights_only=True)
    assert payload["format"] == checkpoint.FORMAT and payload["version"] == checkpoint.VERSION
    assert set(payload) == {"format", "version", "config", "tokenizer", "labels", "model", "train_state"}
    assert payload["labels"] is None  # a model without tunes; see test_conditional for one with them
    assert isinstance(payload["tokenizer"], bytes) and "optimizer" in payload["train_state"]["resume"]


def test_save_is_atomic_and_leaves_no_temporary_files(tiny_checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    loaded = checkpoint.load(tiny_checkpoint)
    target = tmp_path / "model.pt"
    checkpoint.save(target, loaded.config, loaded.tokenizer, loaded.model.state_dict(), {})
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        checkpoint.save(target, loaded.config, loaded.tokenizer, loaded.model.state_dict(), {})
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused_unexecuted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = RunsCode(marker)
    evil = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "version": 1, "x": payload}, evil)
    with pytest.raises(CheckpointError, match="would run code"):
        checkpoint.load(evil)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError):
        checkpoint.load(raw)
    assert not marker.exists()


def test_damaged_and_foreign_files_are_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    noise = tmp_path / "noise.pt"
    noise.write_bytes(random.Random(0).randbytes(4096))  # fixed: some random bytes happen to read as a pickle
    state_dict = tmp_path / "state_dict.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state_dict)
    future = tmp_path / "future.pt"
    payload = torch.load(tiny_checkpoint, weights_only=True)
    torch.save({**payload, "version": checkpoint.VERSION + 1}, future)
    cases = {truncated: "truncated or damaged", noise: "not a readable", state_dict: "not a vaegen checkpoint",
             future: "newer than this vaegen", tmp_path / "missing.pt": "does not exist", tmp_path: "is a directory"}
    for path, fragment in cases.items():
        with pytest.raises(CheckpointError, match=fragment):
            checkpoint.load(path)


def test_check_writable(tmp_path: Path) -> None:
    existing = tmp_path / "x.pt"
    existing.write_bytes(b"keep me")
    with pytest.raises(CheckpointError, match="already exists"):
        files.check_writable(existing, overwrite=False)
    files.check_writable(existing, overwrite=True)
    with pytest.raises(CheckpointError, match="does not exist"):
        files.check_writable(tmp_path / "no" / "x.pt", overwrite=False)
    with pytest.raises(CheckpointError, match="is a directory"):
        files.check_writable(tmp_path, overwrite=True)
    assert existing.read_bytes() == b"keep me"


def test_locate_prefers_flag_then_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAEGEN_CHECKPOINT", "from_env.pt")
    assert checkpoint.locate(Path("flag.pt")) == Path("flag.pt")
    assert checkpoint.locate(None) == Path("from_env.pt")
    monkeypatch.delenv("VAEGEN_CHECKPOINT")
    assert checkpoint.locate(None) == checkpoint.BUNDLED  # nothing named or found: the model that ships
    assert checkpoint.locate(None, by_tune=True) == checkpoint.BUNDLED_TUNES  # a tune asked for: whole ci by tune
    (tmp_path / "vaegen.pt").write_bytes(b"")
    assert checkpoint.locate(None) == Path("vaegen.pt")
    monkeypatch.setattr(checkpoint, "BUNDLED", tmp_path / "not-installed.pt")
    (tmp_path / "vaegen.pt").unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.locate(None)


def test_export_keeps_what_generation_needs_in_half_the_bytes(tiny_checkpoint: Path, tmp_path: Path) -> None:
    exported = tmp_path / "small.pt"
    checkpoint.export(tiny_checkpoint, exported, "float16")
    assert exported.stat().st_size < tiny_checkpoint.stat().st_size / 4
    payload = torch.load(exported, weights_only=True)
    assert "resume" not in payload["train_state"] and payload["train_state"]["valid"] is not None
    assert all(t.dtype == torch.float16 for t in payload["model"].values() if t.is_floating_point())
    original, small = checkpoint.load(tiny_checkpoint), checkpoint.load(exported)
    for (name, a), b in zip(original.model.state_dict().items(), small.model.state_dict().values()):
        assert b.dtype == a.dtype and torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
    with pytest.raises(TrainingError, match="no training state to resume"):
        load_resumable(exported, [])


def test_int8_rows_keep_their_own_scale() -> None:
    weights = {"w": torch.tensor([[1.0, -0.5, 0.25], [1e-3, -2e-3, 5e-4]]), "b": torch.tensor([0.1, 0.2]),
               "ids": torch.tensor([1, 2])}
    stored, scales = checkpoint.quantize(weights)
    assert stored["w"].dtype == torch.int8 and stored["b"].dtype == torch.float16 and stored["ids"].dtype == torch.int64
    assert set(scales) == {"w"} and stored["w"].abs().amax(dim=1).tolist() == [127, 127]
    back = checkpoint.dequantize(stored, scales)["w"]
    row_max = weights["w"].abs().amax(dim=1, keepdim=True)
    assert ((back - weights["w"]).abs() <= row_max / 254 + 1e-9).all()  # half a step of its own row's scale
    assert (back[1] != 0).all()  # a row of small weights is not rounded away by a large row's scale


def test_int8_export_loads_as_float32_close_to_the_original(tiny_checkpoint: Path, tmp_path: Path) -> None:
    small, half = tmp_path / "int8.pt", tmp_path / "half.pt"
    checkpoint.export(tiny_checkpoint, small, "int8")
    checkpoint.export(tiny_checkpoint, half, "float16")
    assert small.stat().st_size < 0.7 * half.stat().st_size
    payload = torch.load(small, weights_only=True)
    assert payload["version"] == checkpoint.VERSION and payload["scales"]
    original, loaded = checkpoint.load(tiny_checkpoint), checkpoint.load(small)
    for (name, a), b in zip(original.model.state_dict().items(), loaded.model.state_dict().values()):
        assert b.dtype == a.dtype and torch.allclose(a, b, atol=a.abs().max().item() / 100 + 1e-6), name
    again = tmp_path / "again.pt"
    checkpoint.export(small, again, "float16")  # an int8 file re-exported is read back first, not reinterpreted
    assert torch.allclose(checkpoint.load(again).model.state_dict()[name], b, atol=1e-2)
    with pytest.raises(CheckpointError, match="choose one of float32, float16, int8"):
        checkpoint.export(tiny_checkpoint, tmp_path / "x.pt", "int4")


def test_a_shipped_model_is_found_by_name_and_only_one_source_is_named(tmp_path: Path) -> None:
    from vaegen.core import shipped

    assert checkpoint.locate(None, model="songci-ci") == checkpoint.BUNDLED_TUNES
    assert checkpoint.locate(None, model="en") == shipped.MODELS_DIR / "en.pt"
    with pytest.raises(CheckpointError, match="not a model that ships with vaegen; choose one of en, songci-lines"):
        checkpoint.locate(None, model="english")
    with pytest.raises(CheckpointError, match="--checkpoint and --model both"):
        checkpoint.locate(tmp_path / "x.pt", model="en")


def test_every_shipped_model_carries_its_corpus_licence_and_figures() -> None:
    from vaegen.core import shipped

    data = Path(__file__).resolve().parents[1] / "data"
    sources = {"wordnet.txt": data / "wordnet" / "LICENSE", "chinese-poetry.txt": data / "songci" / "LICENSE"}
    for model in shipped.models().values():
        assert model.file.is_file() and model.figures.is_file(), model.name
        assert model.licence_file.read_bytes() == sources[model.licence_file.name].read_bytes()
        assert model.scores()["nll"] > 0 and model.name in shipped.find(model.name).name


def test_the_bundled_model_is_a_song_ci_model_and_the_package_stays_small() -> None:
    bundled = checkpoint.load(checkpoint.BUNDLED)
    assert bundled.tokenizer.vocab_size > 3000 and bundled.config.model.latent_dim > 0
    by_tune = checkpoint.load(checkpoint.BUNDLED_TUNES)
    assert by_tune.labels is not None and by_tune.labels.find("浣溪沙")[1].form == "7。7。7。7，7。7。"
    package = checkpoint.BUNDLED.parents[1]
    size = sum(f.stat().st_size for f in package.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    assert size < 20 * 2**20
