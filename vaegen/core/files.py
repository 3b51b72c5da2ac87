"""Writing files so that nothing a user has is lost: checks before the work, atomic replacement after it;
and the disk cache, where work worth keeping between runs is filed under the hash of what made it.

Every file vaegen writes (checkpoints, metrics logs, caches, --output files, plots) goes through
`write_atomically`: a temporary file beside the target, fsynced, renamed over it, then the directory
fsynced so the rename itself survives a power cut. `check_writable` refuses a bad output path before
an hour of training rather than after it. The cache ($VAEGEN_CACHE_DIR, default ~/.cache/vaegen) holds a
corpus's token ids (`store`), the fluency judge and the served map (`cached`): an entry that cannot be
read is rebuilt, and one that cannot be written costs only the reuse.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from vaegen.core.errors import CheckpointError


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX); a platform without directory handles skips it."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some filesystems refuse fsync on a directory: the rename is all they offer
        pass
    finally:
        os.close(handle)


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write` on a temporary file beside `path`, fsync, rename it over `path`, fsync the directory:
    readers see the old file or the new one, never half of one; the temporary file is removed on failure."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def check_writable(path: Path, overwrite: bool, option: str = "--out", example: str = "vaegen.pt") -> None:
    """Refuse an output path before the work starts (training: an hour of it) rather than after."""
    if path.is_dir():
        raise CheckpointError(f"{option} {path} is a directory; name a file such as {path / example}")
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} already exists; pass --force to overwrite it or {option} to write elsewhere")
    directory = path.parent
    if not directory.is_dir():
        raise CheckpointError(f"directory {directory} does not exist; create it or choose another {option}")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError:
        raise CheckpointError(f"cannot write in {directory}; choose another {option}")


T = TypeVar("T")


def cache_dir() -> Path:
    return Path(os.environ.get("VAEGEN_CACHE_DIR") or Path.home() / ".cache" / "vaegen")


def cache_key(*parts: str | bytes) -> str:
    """What a cache entry is filed under: a hash of everything that shapes it (its kind and version first)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def store(path: Path, write: Callable[[BinaryIO], object]) -> bool:
    """Write a cache file atomically; a cache that cannot be written (read-only home, full disk) is skipped:
    whether it was written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, write)
    except OSError:
        return False
    return True


def cached(path: Path, read: Callable[[Path], T | None], build: Callable[[], T],
           write: Callable[[BinaryIO, T], object]) -> tuple[T, bool]:
    """The value filed at `path` in the cache, read back by `read` (None: missing or damaged), else built and
    stored: (value, whether it was read back)."""
    if path.exists():
        value = read(path)
        if value is not None:
            return value, True
    value = build()
    store(path, lambda handle: write(handle, value))
    return value, False
