"""What a user installs: the package built as a wheel (not the source tree) holds the shipped models with their
manifest, figures, maps and corpus licences within 20 MB, and, installed on its own into an empty folder,
writes English and lists its models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vaegen.core import shipped

ROOT = Path(__file__).resolve().parents[1]
MAX_INSTALLED_BYTES = 20 * 10**6


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the folder it is installed into) built from this tree by pip, as a user's install is."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy of what the wheel is built from: the build leaves its files beside them
    shutil.copytree(ROOT / "vaegen", source / "vaegen", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)], check=True)
    wheel = next(out.glob("vaegen-*.whl"))
    target = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    return wheel, target


@pytest.mark.slow
def test_the_wheel_ships_every_model_with_its_licence_figures_and_map_within_20_mb(installed) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    assert sum(sizes.values()) <= MAX_INSTALLED_BYTES
    for model in shipped.models().values():
        for path in (model.file, model.figures, model.map, model.licence_file):
            assert path.relative_to(ROOT).as_posix() in sizes, path
    assert "vaegen/models/models.toml" in sizes


@pytest.mark.slow
def test_installed_alone_it_writes_english_and_lists_its_models(installed, tmp_path: Path) -> None:
    _, target = installed
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("VAEGEN_CHECKPOINT", None)

    def vaegen(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "vaegen", *args], check=False, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run([sys.executable, "-c", "import vaegen; print(vaegen.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target))  # the installed copy answers, not this source tree
    lines = vaegen("sample", "--model", "en", "--n", "5", "--seed", "0").splitlines()
    assert len(lines) == 5 and all(line.isascii() and any(c.isalpha() for c in line) for line in lines)
    path = vaegen("interpolate", "--model", "en", "the children were playing in the garden",
                  "he sold his house last year").splitlines()
    assert len(path) >= 3 and all(line.isascii() for line in path)
    listed = vaegen("models")
    assert all(name in listed for name in ("en", "songci-lines", "songci-ci")) and "WordNet" in listed
