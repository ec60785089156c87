"""defoscan.fingerprint: a kept result is reused only when what made it is unchanged."""

import os

import defoscan.fingerprint
from defoscan.fingerprint import canonical, digest, file_identity, same, source_digest


def test_tuples_and_lists_compare_equal_as_stored():
    assert same({"shape": [3, 4]}, {"shape": (3, 4)})
    assert canonical({1: (2, 3)}) == {"1": [2, 3]}


def test_a_changed_parameter_is_a_different_fingerprint():
    assert not same({"cell": 100.0, "detector": "cnn"}, {"cell": 50.0, "detector": "cnn"})
    assert digest({"cell": 100.0}) != digest({"cell": 50.0})
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})


def test_a_rewritten_file_has_a_new_identity(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x,y\n1,2\n")
    before = file_identity(path)
    assert before[0] == os.path.abspath(path) and before[1] == 8
    path.write_text("x,y\n1,2\n3,4\n")
    assert not same(before, file_identity(path))


def test_a_file_rewritten_in_place_with_the_same_size_and_time_has_a_new_identity(tmp_path):
    """Restored from an archive, or copied with ``cp -p``: size and modification time alone would say unchanged."""
    path = tmp_path / "points.csv"
    for size in (1000, 5_000_000):  # read whole; sampled in blocks, the first and the last among them
        content = bytearray(b"1" * size)
        path.write_bytes(content)
        before = file_identity(path)
        stat = os.stat(path)
        for where in (0, size // 2 if size < 10_000 else size - 1):
            changed = bytearray(content)
            changed[where] = ord("2")
            path.write_bytes(changed)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            identity = file_identity(path)
            assert identity[:3] == before[:3] and not same(before, identity)
    # The known limit, in the documentation (detect --fresh): a change between the sampled blocks goes unseen.
    path.write_bytes(content)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = bytearray(content)
    changed[size // 3] = ord("2")
    path.write_bytes(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert same(before, file_identity(path))


def test_the_source_digest_changes_with_any_source_file(tmp_path, monkeypatch):
    package = tmp_path / "defoscan"
    (package / "sub").mkdir(parents=True)
    (package / "fingerprint.py").write_text("# a copy\n")
    (package / "sub" / "module.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(defoscan.fingerprint, "__file__", str(package / "fingerprint.py"))
    source_digest.cache_clear()
    first = source_digest()
    (package / "sub" / "module.py").write_text("VALUE = 2\n")
    source_digest.cache_clear()
    second = source_digest()
    (package / "notes.txt").write_text("not source")
    source_digest.cache_clear()
    assert first != second == source_digest()
    source_digest.cache_clear()  # the real package's digest again for other tests
