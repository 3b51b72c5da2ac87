"""Writing files so that nothing a user has is lost: checks before the work, atomic replacement after it.

Every file vaegen writes (checkpoints, metrics logs, token caches, --output files, plots) goes through
`write_atomically`: a temporary file beside the target, fsynced, renamed over it, then the directory
fsynced so the rename itself survives a power cut. `check_writable` refuses a bad output path before
an hour of training rather than after it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from vaegen.errors import CheckpointError


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
