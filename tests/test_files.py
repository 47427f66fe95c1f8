"""kpedu.files.write_text_atomic: the old file or the new one, never a half-written one."""
from __future__ import annotations

import pytest

from kpedu.files import write_text_atomic


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "a.json"
    assert write_text_atomic(path, "one") == path and path.read_text() == "one"
    write_text_atomic(path, "two")
    assert path.read_text() == "two" and sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    write_text_atomic(path, "good")

    def failing_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr("kpedu.files.os.replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        write_text_atomic(path, "new")
    assert path.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"], "the temporary file was removed"


def test_atomic_open_binary_and_a_failure_inside_the_block(tmp_path):
    from kpedu.files import atomic_open

    path = tmp_path / "w.bin"
    with atomic_open(path, "wb") as fh:
        fh.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_open(path, "wb") as fh:
            fh.write(b"partial")
            raise RuntimeError("failed half-way")
    assert path.read_bytes() == b"\x00\x01" and [p.name for p in tmp_path.iterdir()] == ["w.bin"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(path, "a"):
            pass
    with pytest.raises(IsADirectoryError):
        with atomic_open(tmp_path, "w"):
            pass


def test_copies_replace_files_and_folders_or_leave_them_as_they_were(tmp_path, monkeypatch):
    import shutil

    from kpedu import files

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("new a")
    (src / "sub" / "b.txt").write_text("new b")
    dst = tmp_path / "out" / "tree"
    dst.mkdir(parents=True)
    (dst / "old.txt").write_text("old")
    files.copy_tree_atomic(src, dst)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    assert sorted(p.name for p in dst.parent.iterdir()) == ["tree"], "no temporary folder is left"

    def failing_copytree(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", failing_copytree)
    with pytest.raises(OSError, match="disk full"):
        files.copy_tree_atomic(src, dst)
    assert (dst / "a.txt").read_text() == "new a" and sorted(p.name for p in dst.parent.iterdir()) == ["tree"]
    monkeypatch.undo()
    files.copy_file_atomic(src / "a.txt", tmp_path / "c.txt")
    assert (tmp_path / "c.txt").read_text() == "new a"
