"""The map of a latent space: the measure of how well a layout keeps neighbours (on cases counted by hand), the
neighbour layout and the placing of new codes on it, the map file, `vaegen map`, and which map `vaegen serve`
shows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from conftest import english_lines

import vaegen
from vaegen.generate import landscape as maps
from vaegen.generate.projection import nearest_others, neighbour_layout, neighbour_preservation, place

pytest.importorskip("sklearn")


def on_a_line(*xs: float) -> torch.Tensor:
    """Points (N, 3) on the first axis at xs."""
    return torch.tensor([[x, 0.0, 0.0] for x in xs])


def test_nearest_others_leaves_each_point_out_of_its_own_neighbours() -> None:
    assert nearest_others(on_a_line(0, 1, 3, 7), 2).tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]


def test_neighbour_preservation_counts_the_neighbours_in_z_that_stay_neighbours_on_the_plane() -> None:
    codes = on_a_line(0, 1, 3, 7)  # nearest in z: 0 -> 1, 1 -> 0, 2 -> 1, 3 -> 2
    assert neighbour_preservation(codes, codes[:, :2], k=1) == 1.0  # the same arrangement keeps them all
    plane = on_a_line(0, 1, 7, 3)[:, :2]  # nearest on the plane: 0 -> 1, 1 -> 0, 2 -> 3, 3 -> 1
    assert neighbour_preservation(codes, plane, k=1) == 0.5
    # k = 2: {1, 2} vs {1, 3}, {0, 2} vs {0, 3}, {1, 0} vs {3, 1}, {2, 1} vs {1, 0}: one of two kept by each
    assert neighbour_preservation(codes, plane, k=2) == 0.5
    assert neighbour_preservation(codes[:1], plane[:1]) == 1.0  # one sentence has no neighbours to lose


def test_the_neighbour_layout_keeps_clusters_together_where_the_principal_axes_cannot() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=generator) * 6
    codes = (centres.repeat_interleave(20, dim=0) + torch.randn(80, 16, generator=generator)).float()
    layout = neighbour_layout(codes, seed=0)
    assert layout.shape == (80, 2) and torch.equal(layout, neighbour_layout(codes, seed=0))  # same seed, same map
    kept = maps.Landscape([str(i) for i in range(80)], None, codes, layout, "prior").kept
    assert kept["neighbours"] > kept["axes"] and kept["neighbours"] > 0.3


def test_a_new_code_is_placed_among_its_nearest_map_codes() -> None:
    codes, layout = on_a_line(0, 1, 10), torch.tensor([[0.0, 0.0], [2.0, 0.0], [50.0, 50.0]])
    placed = place(torch.cat([codes[1:2], on_a_line(0.5)]), codes, layout, k=2)
    assert torch.allclose(placed[0], layout[1], atol=1e-4)  # a map code lands on its own place
    assert torch.allclose(placed[1], torch.tensor([1.0, 0.0]), atol=1e-4)  # halfway between two: halfway


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "lines.txt"
    path.write_text("\n".join(english_lines(60)) + "\n", encoding="utf-8")
    return path


def test_a_map_is_built_with_its_progress_and_read_back_as_it_was_written(tiny_checkpoint: Path, corpus: Path) -> None:
    model = vaegen.load(tiny_checkpoint, "cpu")
    told: list[tuple[str, int, int]] = []
    built = maps.build(model, corpus, 50, checkpoint=maps.fingerprint(tiny_checkpoint),
                       progress=lambda *step: told.append(step))
    assert told[-2:] == [("encoding", 50, 50), ("laying out", 50, 50)] and len(built.texts) == 50
    buffer = io.BytesIO()
    maps.write(buffer, built)
    path = corpus.parent / "lines.map.pt"
    path.write_bytes(buffer.getvalue())
    again = maps.read(path)
    assert again is not None and again.texts == built.texts and torch.equal(again.codes, built.codes)
    assert torch.equal(again.layout, built.layout) and again.kept == built.kept
    assert again.checkpoint == maps.fingerprint(tiny_checkpoint) and again.source == "corpus"


def test_a_map_file_of_another_format_or_damaged_is_not_read(tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    torch.save({"texts": ["a"], "codes": torch.zeros(1, 2)}, old)  # a map of the first format had no format field
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a map")
    assert maps.read(old) is None and maps.read(damaged) is None


def test_a_build_stops_where_its_progress_raises(tiny_checkpoint: Path) -> None:
    model = vaegen.load(tiny_checkpoint, "cpu")

    def stop(stage: str, done: int, total: int) -> None:
        raise InterruptedError(stage)

    with pytest.raises(InterruptedError, match="decoding"):
        maps.build(model, None, 100, progress=stop)


def test_vaegen_map_writes_the_file_and_prints_how_well_each_layout_keeps_neighbours(
        tiny_checkpoint: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vaegen.cli import run

    out = tmp_path / "tiny.map.pt"
    assert run(["map", str(corpus), "-c", str(tiny_checkpoint), "-o", str(out), "--points", "40"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("map of 40 corpus sentences; of each one's 10 nearest in z, ")
    assert "on the principal axes" in printed.out and f"wrote {out}" in printed.err
    written = maps.read(out)
    assert written is not None and len(written.texts) == 40 and written.checkpoint == maps.fingerprint(tiny_checkpoint)
    assert run(["map", str(corpus), "-c", str(tiny_checkpoint), "-o", str(out)]) != 0  # no overwriting unasked
    assert run(["map", str(corpus), "-o", str(tmp_path / "other.pt")]) != 0  # whose map? a model must be named
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "--force" in errors[0] and "--model NAME" in errors[1]
