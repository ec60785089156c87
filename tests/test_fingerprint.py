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
