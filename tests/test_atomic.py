"""defoscan.atomic: a file appears whole or not at all, with the mode any other file would get."""

import errno
import json
import os
import stat
from types import SimpleNamespace

import numpy as np
import pytest

from defoscan.atomic import atomic_path, write_json


def test_file_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as temporary:
        assert not os.path.exists(temporary)  # writers such as GDAL create it themselves
        with open(temporary, "w") as handle:
            handle.write("whole")
        assert not target.exists()
    assert target.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        with open(temporary, "w") as handle:
            handle.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_directory_in_the_targets_place_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.tif"
    target.mkdir()
    with pytest.raises(IsADirectoryError), atomic_path(target) as temporary:
        with open(temporary, "w") as handle:
            handle.write("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
    assert not list(target.iterdir())


def test_a_file_created_0600_gets_the_umask_mode(tmp_path):
    target = tmp_path / "weights.bin"
    with atomic_path(target) as temporary:
        descriptor = os.open(temporary, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(descriptor)
    current = os.umask(0)
    os.umask(current)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current


def test_write_json_takes_numpy_values(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"b": np.float32(0.5), "a": np.int64(3), "c": np.arange(3)})
    assert json.loads(path.read_text()) == {"a": 3, "b": 0.5, "c": [0, 1, 2]}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys


def test_a_failed_write_on_a_nearly_full_disk_is_a_full_disk(tmp_path, monkeypatch):
    # GDAL and SQLite fail without an errno ("IO error writing tag data"): the space left tells.
    target = tmp_path / "out.tif"
    monkeypatch.setattr("defoscan.atomic.shutil.disk_usage", lambda path: SimpleNamespace(free=4096))
    with pytest.raises(OSError) as raised, atomic_path(target) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("TIFFWriteDirectoryTagData:IO error writing tag data")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_write_with_space_left_keeps_its_error(tmp_path, monkeypatch):
    monkeypatch.setattr("defoscan.atomic.shutil.disk_usage", lambda path: SimpleNamespace(free=10**9))
    with pytest.raises(RuntimeError, match="a bug"), atomic_path(tmp_path / "out.tif"):
        raise RuntimeError("a bug")
