"""The generation commands end to end on a tiny trained model: sample, reconstruct, encode,
interpolate and complete, their output formats and their reproducibility."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_user_error, run_in_process

import vaegen

SENTENCES = ["the cat sees the river .", "a dog paints an open door again ."]


def run_cli(capsys: pytest.CaptureFixture[str], checkpoint: Path, *args: str) -> list[str]:
    from vaegen.cli import run

    code = run([*args, "-c", str(checkpoint)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out.splitlines()


def test_sample_json_lines_carry_text_logprob_and_z(tiny_checkpoint: Path, capsys) -> None:
    lines = run_cli(capsys, tiny_checkpoint, "sample", "-n", "6", "--seed", "4", "--json", "--with-z", "--top-p", "0.9")
    rows = [json.loads(line) for line in lines]
    latent = vaegen.load(tiny_checkpoint, "cpu").latent_dim
    assert len(rows) == 6 and all(set(r) == {"text", "logprob", "z"} for r in rows)
    assert all(r["logprob"] < 0 and len(r["z"]) == latent for r in rows)
    assert run_cli(capsys, tiny_checkpoint, "sample", "-n", "6", "--seed", "4", "--json", "--with-z", "--top-p", "0.9") == lines
    plain = run_cli(capsys, tiny_checkpoint, "sample", "-n", "6", "--seed", "4", "--top-p", "0.9")
    assert plain == [r["text"] for r in rows]


def test_output_file_is_written_whole_and_never_overwritten_without_force(tiny_checkpoint: Path, tmp_path: Path,
                                                                          capsys) -> None:
    target = tmp_path / "samples.txt"
    assert run_cli(capsys, tiny_checkpoint, "sample", "-n", "3", "--seed", "1", "--output", str(target)) == []
    written = target.read_text(encoding="utf-8").splitlines()
    assert written == run_cli(capsys, tiny_checkpoint, "sample", "-n", "3", "--seed", "1")
    assert_user_error(run_in_process(capsys, "sample", "-n", "5", "--output", str(target), "-c", str(tiny_checkpoint)),
                      "already exists")
    for command in (["sample"], ["encode", "a"]):  # refused before any model is loaded
        assert_user_error(run_in_process(capsys, *command, "--output", str(target), "-c", "missing.pt"), "already exists")
    assert target.read_text(encoding="utf-8").splitlines() == written
    run_cli(capsys, tiny_checkpoint, "sample", "-n", "5", "--output", str(target), "--force")
    assert len(target.read_text(encoding="utf-8").splitlines()) == 5


def test_reconstruct_from_arguments_or_a_file_and_near_at_radius_zero_agrees(tiny_checkpoint: Path, tmp_path: Path,
                                                                               capsys) -> None:
    greedy = run_cli(capsys, tiny_checkpoint, "reconstruct", *SENTENCES)
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    assert run_cli(capsys, tiny_checkpoint, "reconstruct", "--input", str(source)) == greedy
    assert run_cli(capsys, tiny_checkpoint, "reconstruct", *SENTENCES, "--beam", "1") == greedy
    assert run_cli(capsys, tiny_checkpoint, "sample", "--near", SENTENCES[0], "--radius", "0", "--greedy",
                   "-n", "3") == [greedy[0]] * 3
    drawn = run_cli(capsys, tiny_checkpoint, "reconstruct", *SENTENCES, "--sample-z", "--seed", "2")
    assert drawn == run_cli(capsys, tiny_checkpoint, "reconstruct", *SENTENCES, "--sample-z", "--seed", "2")


def test_encode_writes_mu_and_sigma_as_json_lines_or_npy(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    rows = [json.loads(line) for line in run_cli(capsys, tiny_checkpoint, "encode", *SENTENCES)]
    posterior = vaegen.load(tiny_checkpoint, "cpu").encode(SENTENCES)
    assert [r["text"] for r in rows] == SENTENCES
    assert np.allclose([r["mu"] for r in rows], posterior.mu.numpy(), atol=1e-4)
    assert np.allclose([r["sigma"] for r in rows], (0.5 * posterior.logvar).exp().numpy(), atol=1e-4)
    target = tmp_path / "codes.npy"
    run_cli(capsys, tiny_checkpoint, "encode", *SENTENCES, "--output", str(target))
    array = np.load(target)
    assert array.shape == (2, 2, posterior.mu.size(1)) and array.dtype == np.float32
    assert np.allclose(array[:, 0], posterior.mu.numpy()) and (array[:, 1] > 0).all()


def test_encode_takes_json_as_every_generation_command_does(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    lines = run_cli(capsys, tiny_checkpoint, "encode", *SENTENCES)
    assert run_cli(capsys, tiny_checkpoint, "encode", *SENTENCES, "--json") == lines
    assert_user_error(run_in_process(capsys, "encode", *SENTENCES, "--json", "--output", str(tmp_path / "codes.npy"),
                                     "-c", str(tiny_checkpoint)), "drop one of the two")
    assert not (tmp_path / "codes.npy").exists()


def test_interpolate_paths_random_endpoints_and_unique(tiny_checkpoint: Path, capsys) -> None:
    for path in ("linear", "slerp"):
        assert len(run_cli(capsys, tiny_checkpoint, "interpolate", *SENTENCES, "--path", path, "--steps", "5")) == 5
    walk = run_cli(capsys, tiny_checkpoint, "interpolate", "--random", "--seed", "3", "--steps", "9")
    assert len(walk) == 9 and walk == run_cli(capsys, tiny_checkpoint, "interpolate", "--random", "--seed", "3",
                                              "--steps", "9")
    unique = run_cli(capsys, tiny_checkpoint, "interpolate", "--random", "--seed", "3", "--steps", "9", "--unique")
    assert unique == [line for i, line in enumerate(walk) if i == 0 or line != walk[i - 1]]
    half = run_cli(capsys, tiny_checkpoint, "interpolate", SENTENCES[0], "--random", "--seed", "3", "--steps", "3")
    assert half[0] == run_cli(capsys, tiny_checkpoint, "reconstruct", SENTENCES[0])[0]


def test_complete_puts_the_codes_that_explain_the_prefix_best_first(tiny_checkpoint: Path, capsys) -> None:
    import torch

    from vaegen.generate.decoding import prefix_log_likelihood

    model = vaegen.load(tiny_checkpoint, "cpu")
    for prefix in ("the cat", "a dog paints ", "the old man remembers"):
        rows = [json.loads(line) for line in run_cli(capsys, tiny_checkpoint, "complete", prefix, "-n", "6", "--seed",
                                                     "0", "--json", "--with-z")]
        assert len(rows) == 6 and all(r["text"].startswith(prefix) for r in rows), rows
        with torch.no_grad():
            explained = prefix_log_likelihood(model.model, torch.tensor([r["z"] for r in rows]),
                                              model.tokenizer.encode([prefix])[0]).tolist()
        # the most prefix-likely codes first (z is printed to 5 decimals, hence the tolerance)
        assert all(first >= second - 1e-3 for first, second in itertools.pairwise(explained)), explained
        # each logprob is the prefix's plus the rest's, end of sentence included: below the prefix's alone
        assert all(r["logprob"] < likelihood + 1e-3 for r, likelihood in zip(rows, explained))
    beams = run_cli(capsys, tiny_checkpoint, "complete", "the cat", "-n", "2", "--beam", "3", "--seed", "0")
    assert len(beams) == 2 and all(line.startswith("the cat") for line in beams)
