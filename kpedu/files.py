"""Writing files without ever leaving a half-written one: a temporary file beside the target,
then an atomic rename.

Every file kpedu writes goes through :func:`atomic_open` (text: :func:`write_text_atomic`):
COCO JSON, checkpoints and training states (:mod:`kpedu.train`), the checkpoint registry
(:mod:`kpedu.hub`), the course editions (:mod:`kpedu.editions`) and the build scripts'
reports. A reader, or a run that resumes after a crash, sees the old file or the new one,
never a truncated one.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_open", "write_text_atomic", "copy_file_atomic", "copy_tree_atomic"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file in ``path``'s folder for writing; on a clean exit it is flushed,
    synced to disk and renamed onto ``path`` (``os.replace``, atomic on one file system).

    If the ``with`` block raises, the temporary file is removed and ``path`` keeps its old
    content. ``mode`` is ``"w"`` (text, UTF-8 unless ``encoding``) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode == "w":
            fh = os.fdopen(fd, "w", encoding=encoding or "utf-8")
        else:
            fh = os.fdopen(fd, "wb")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_open`. Returns the path."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def copy_file_atomic(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy the file ``src`` onto ``dst`` through :func:`atomic_open`. Returns ``dst``."""
    with open(src, "rb") as fin, atomic_open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return Path(dst)


def copy_tree_atomic(src: str | os.PathLike[str], dst: str | os.PathLike[str], ignore=None) -> Path:
    """Replace the folder ``dst`` by a copy of ``src``: the copy is made beside ``dst`` under a
    temporary name and swapped in by renames, so a failed copy leaves the old ``dst`` as it was.
    ``ignore`` is passed to :func:`shutil.copytree`. Returns ``dst``."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp"))
    old = tmp.with_name(tmp.name[:-4] + ".old")
    try:
        shutil.copytree(src, tmp / "tree", ignore=ignore)
        if dst.exists():
            os.replace(dst, old)
        os.replace(tmp / "tree", dst)
    except BaseException:
        if old.exists() and not dst.exists():
            os.replace(old, dst)  # put the old folder back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return dst
