"""Atomic file writes: write to a temporary file in the same directory, fsync, then rename over the target.

A crash or Ctrl-C leaves either the old file or the complete new one, never a partial file. Folders of files
(:func:`atomic_folder`) likewise: a temporary sibling folder, renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputExistsError


def check_writable(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Raise :class:`OutputExistsError` when ``path`` exists and ``overwrite`` is false."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists", hint="pass --overwrite to replace it")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed.

    The temporary name keeps the target's suffix so libraries that dispatch on it (numpy, pillow) work.
    """
    path = check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if not overwrite and path.exists():  # appeared while we were writing
            raise OutputExistsError(f"{path} already exists", hint="pass --overwrite to replace it")
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; a user's file gets the usual mode
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` to fill with files; on success its files are fsynced and it is
    renamed to ``path``, on error it is removed.

    A folder cannot be renamed over a non-empty one, so an existing ``path`` (with ``overwrite``) is first renamed
    aside and removed once the new folder is in place: for that moment nothing is at ``path``, but a reader never
    sees a partial folder."""
    path = check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp_path
        for entry in os.scandir(tmp_path):
            with open(entry.path, "rb+") as fh:
                os.fsync(fh.fileno())
        if not overwrite and os.path.lexists(path):  # appeared while we were writing
            raise OutputExistsError(f"{path} already exists", hint="pass --overwrite to replace it")
        os.chmod(tmp_path, 0o777 & ~_umask())  # mkdtemp makes 0700
        _replace_folder(tmp_path, path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _replace_folder(new: Path, path: Path) -> None:
    """Rename the folder ``new`` to ``path``; whatever was at ``path`` is renamed aside first, put back if the
    rename fails, and removed after it succeeds."""
    if not os.path.lexists(path):
        os.rename(new, path)
        return
    aside = new.with_name(new.name + ".old")
    os.rename(path, aside)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(aside, path)
        raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    else:
        aside.unlink()


@functools.cache
def _umask() -> int:
    """The process's umask (read once: setting it to read it is not thread-safe)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
