"""defoscan.fingerprint: a kept result is reused only when what made it is unchanged."""

import os

from defoscan.fingerprint import canonical, digest, file_identity, same


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
