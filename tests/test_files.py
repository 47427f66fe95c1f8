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
