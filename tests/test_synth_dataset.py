"""synth.dataset: shards, labels and manifest; exact balance, reproducibility across workers, polygons, resume."""

import hashlib
import json
import os

import numpy as np
import pytest
import rasterio.features
from affine import Affine

from defoscan.errors import InputError
from defoscan.synth import dataset
from defoscan.synth.dataset import (
    deformation_polygons,
    load_profiles,
    load_shard,
    make_sample,
    read_dataset,
    read_manifest,
    remake_sample,
    sample_plan,
    sample_rng,
    verify_dataset,
    write_dataset,
)

# Rows and columns differ, and 20 columns are not a whole number of bytes: packing and unpacking are tested.
SMALL = {"n": 10, "seed": 7, "shape": (24, 20), "cell_size": 50.0, "shard_size": 4}


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def file_hashes(directory):
    return {name: sha256(os.path.join(directory, name)) for name in sorted(os.listdir(directory))}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "one-worker"
    manifest = write_dataset(out, SMALL["n"], seed=SMALL["seed"], shape=SMALL["shape"], shard_size=4, workers=1)
    return out, manifest


# --- the plan and the generators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "positive_fraction", "hard_fraction", "positives", "hards"),
    [(10, 0.5, 0.5, 5, 3), (7, 0.5, 0.5, 4, 2), (9, 1 / 3, 0.0, 3, 0), (8, 0.25, 1.0, 2, 6), (5, 0.0, 0.5, 0, 3)],
)
def test_plan_has_the_exact_counts(n, positive_fraction, hard_fraction, positives, hards):
    positive, hard = sample_plan(n, 3, positive_fraction=positive_fraction, hard_fraction=hard_fraction)
    assert positive.sum() == positives and hard.sum() == hards
    assert not (positive & hard).any()  # hardness is for negatives only


def test_plan_order_is_fixed_by_the_seed():
    a, _ = sample_plan(40, 1)
    b, _ = sample_plan(40, 1)
    c, _ = sample_plan(40, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a.sum() == c.sum() == 20


def test_sample_generator_is_the_spawned_child():
    children = np.random.SeedSequence(11).spawn(6)
    for index in (0, 5):
        expected = np.random.default_rng(children[index]).random(4)
        np.testing.assert_array_equal(sample_rng(11, index).random(4), expected)


def test_make_sample_gives_the_class_asked_for():
    for index in range(4):
        sample = make_sample(3, index, positive=index % 2 == 0, hard=index == 1, shape=(24, 20))
        assert sample.label == int(index % 2 == 0) and sample.info["attempts"] >= 1
        assert sample.info["hard"] == (index == 1)


# --- polygons -------------------------------------------------------------------------------------------------


def test_polygons_of_a_hand_made_mask():
    deformation = np.zeros((4, 5))
    deformation[1:3, 1:3] = -5.0  # a 2 x 2 bowl
    deformation[0, 4] = 3.0  # one uplifting cell in the top-right corner
    features = deformation_polygons(deformation, np.abs(deformation) >= 2.0, 10.0)
    assert [f["properties"] for f in features] == [{"sign": "subsidence", "cells": 4}, {"sign": "uplift", "cells": 1}]
    bowl = {tuple(v) for v in features[0]["geometry"]["coordinates"][0]}
    assert bowl == {(10.0, -10.0), (30.0, -10.0), (30.0, -30.0), (10.0, -30.0)}
    corner = {tuple(v) for v in features[1]["geometry"]["coordinates"][0]}
    assert corner == {(40.0, 0.0), (50.0, 0.0), (50.0, -10.0), (40.0, -10.0)}
    assert "-0.0" not in json.dumps(features)


def test_polygons_split_by_sign_and_keep_holes():
    deformation = np.zeros((6, 6))
    deformation[1:5, 1:5] = -4.0
    deformation[2:4, 2:4] = 0.0  # a hole
    deformation[1, 1:3] = 6.0  # an uplifting part of the same area
    mask = np.abs(deformation) >= 2.0
    features = deformation_polygons(deformation, mask, 25.0)
    assert sorted(f["properties"]["sign"] for f in features) == ["subsidence", "uplift"]
    assert sum(f["properties"]["cells"] for f in features) == mask.sum() == 12
    transform = Affine(25.0, 0, 0, 0, -25.0, 0)
    shapes = [(f["geometry"], 1) for f in features]
    np.testing.assert_array_equal(rasterio.features.rasterize(shapes, out_shape=mask.shape, transform=transform), mask)


# --- writing and reading --------------------------------------------------------------------------------------


def test_one_and_two_workers_write_byte_identical_files(small_dataset, tmp_path):
    out, _ = small_dataset
    calls = []
    write_dataset(
        tmp_path / "two",
        SMALL["n"],
        seed=SMALL["seed"],
        shape=SMALL["shape"],
        shard_size=4,
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert file_hashes(out) == file_hashes(tmp_path / "two")
    assert calls[-1] == (10, 10) and all(b == 10 for _, b in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_shards_hold_the_planned_classes_and_the_samples_as_made(small_dataset):
    out, manifest = small_dataset
    positive, hard = sample_plan(10, SMALL["seed"])
    assert manifest["classes"] == {"positive": 5, "negative": 5, "hard_negative": 3}
    assert [(s["start"], s["stop"]) for s in manifest["shards"]] == [(0, 4), (4, 8), (8, 10)]
    labels = np.concatenate([load_shard(out / s["npz"])["label"] for s in manifest["shards"]])
    np.testing.assert_array_equal(labels, positive.astype(np.int8))
    shard = load_shard(out / "shard-00001.npz")
    assert shard["velocity"].shape == (4, 24, 20) and shard["velocity"].dtype == np.float32
    assert shard["count"].dtype == np.uint16 and shard["mask"].dtype == bool and shard["mask"].shape == (4, 24, 20)
    np.testing.assert_array_equal(shard["index"], [4, 5, 6, 7])
    np.testing.assert_array_equal(shard["hard"], hard[4:8].astype(np.int8))
    for k, index in enumerate(range(4, 8)):
        sample = make_sample(SMALL["seed"], index, positive=positive[index], hard=hard[index], shape=(24, 20))
        np.testing.assert_array_equal(shard["velocity"][k], sample.velocity)  # NaN where no data, on both sides
        np.testing.assert_array_equal(shard["count"][k], sample.count)
        np.testing.assert_array_equal(shard["deformation"][k], sample.deformation)
        np.testing.assert_array_equal(shard["mask"][k], sample.mask)
        np.testing.assert_array_equal(shard["spikes"][k], sample.spikes)
        line = shard["labels"][k]
        assert line["index"] == index and line["label"] == sample.label and line["kinds"] == sample.info["kinds"]
        assert line["sources"] == json.loads(json.dumps(sample.info["sources"]))
        observed = np.count_nonzero(sample.count) / sample.count.size
        assert line["coverage_fraction"] == pytest.approx(observed)


def test_every_stored_polygon_set_rasterises_back_to_its_mask(small_dataset):
    out, _ = small_dataset
    transform = Affine(50.0, 0, 0, 0, -50.0, 0)
    positives = 0
    for sample in read_dataset(out):
        features = sample.info["polygons"]
        assert (len(features) > 0) == bool(sample.mask.any())
        if features:
            positives += 1
            shapes = [(f["geometry"], 1) for f in features]
            raster = rasterio.features.rasterize(shapes, out_shape=sample.mask.shape, transform=transform)
            np.testing.assert_array_equal(raster.astype(bool), sample.mask)
            subsiding = sum(f["properties"]["cells"] for f in features if f["properties"]["sign"] == "subsidence")
            assert subsiding == int((sample.mask & (sample.deformation < 0)).sum())
    assert positives == 5


def test_manifest_records_parameters_counts_and_hashes(small_dataset):
    out, manifest = small_dataset
    assert read_manifest(out) == manifest
    assert (manifest["n"], manifest["seed"], manifest["shape"], manifest["cell_size"]) == (10, 7, [24, 20], 50.0)
    assert manifest["profile"] is None and manifest["versions"]["numpy"] == np.__version__
    for entry in manifest["shards"]:
        assert entry["sha256"] == {"npz": sha256(out / entry["npz"]), "labels": sha256(out / entry["labels"])}
    samples = list(read_dataset(out))
    assert len(samples) == 10
    assert manifest["kind_counts"] == {
        kind: sum(kind in s.info["kinds"] for s in samples) for kind in {k for s in samples for k in s.info["kinds"]}
    }
    assert sum(manifest["source_counts"].values()) == sum(len(s.info["sources"]) for s in samples)
    assert sum(e["positive"] for e in manifest["shards"]) == 5


def test_remake_sample_equals_the_stored_one(small_dataset):
    out, _ = small_dataset
    stored = list(read_dataset(out))[9]
    again = remake_sample(out, 9)
    np.testing.assert_array_equal(again.velocity, stored.velocity)
    np.testing.assert_array_equal(again.mask, stored.mask)
    assert again.label == stored.label
    with pytest.raises(IndexError):
        remake_sample(out, 10)


def test_verify_finds_a_changed_byte(small_dataset, tmp_path):
    out, _ = small_dataset
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in os.listdir(out):
        (copy / name).write_bytes((out / name).read_bytes())
    verify_dataset(copy)
    data = bytearray((copy / "shard-00002.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "shard-00002.npz").write_bytes(bytes(data))
    verify_dataset(copy, shards=[0, 1])
    with pytest.raises(InputError, match="sha256 differs"):
        verify_dataset(copy)
    with pytest.raises(InputError, match="shard-00002.npz"):
        list(read_dataset(copy, verify=True))
    (copy / "labels-00000.jsonl").unlink()
    with pytest.raises(InputError, match="missing"):
        verify_dataset(copy, shards=[0])


def test_kinds_are_checked_and_their_order_does_not_matter(tmp_path):
    a = write_dataset(tmp_path / "a", 4, seed=2, shape=(16, 16), workers=1, kinds=["quarry", "mogi"])
    write_dataset(tmp_path / "b", 4, seed=2, shape=(16, 16), workers=1, kinds=("mogi", "quarry", "mogi"))
    assert a["kinds"] == ["mogi", "quarry"] and file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")
    assert a["kind_counts"] and set(a["kind_counts"]) <= {"mogi", "quarry"}
    positive = next(s for s in read_dataset(tmp_path / "a") if s.label == 1)
    np.testing.assert_array_equal(
        remake_sample(tmp_path / "a", positive.info["index"]).deformation, positive.deformation
    )
    with pytest.raises(InputError, match="unknown source kind"):
        write_dataset(tmp_path / "c", 4, seed=2, shape=(16, 16), kinds=["volcano", "mogi"])
    assert not (tmp_path / "c").exists()


# --- resuming -------------------------------------------------------------------------------------------------


def copy_dataset(source, target):
    target.mkdir()
    for name in os.listdir(source):
        (target / name).write_bytes((source / name).read_bytes())
        os.utime(target / name, ns=(10**18, 10**18))  # a stamp no rewrite will have
    return target


def test_resume_makes_only_the_missing_shard(small_dataset, tmp_path):
    out, _ = small_dataset
    partial = copy_dataset(out, tmp_path / "partial")
    (partial / "shard-00001.npz").unlink()
    (partial / "manifest.json").unlink()
    (partial / ".shard-00001.npz.abc123.npz").write_bytes(b"half a zip")  # left by a killed run
    calls = []
    write_dataset(partial, 10, seed=7, shape=(24, 20), shard_size=4, workers=1, progress=lambda d, t: calls.append(d))
    assert file_hashes(partial) == file_hashes(out)
    assert calls[0] == 6 and calls[-1] == 10  # shards 0 and 2 were kept: 6 samples done before any work
    stamps = {name: os.stat(partial / name).st_mtime_ns for name in os.listdir(partial)}
    assert {name for name, stamp in stamps.items() if stamp != 10**18} == {
        "shard-00001.npz",
        "labels-00001.jsonl",
        "manifest.json",
    }


def test_rerun_of_a_complete_dataset_keeps_every_shard(small_dataset, tmp_path):
    out, _ = small_dataset
    done = copy_dataset(out, tmp_path / "done")
    write_dataset(done, 10, seed=7, shape=(24, 20), shard_size=4, workers=1)
    assert file_hashes(done) == file_hashes(out)
    assert all(os.stat(done / n).st_mtime_ns == 10**18 for n in os.listdir(done) if n != "manifest.json")


def test_a_shard_changed_since_the_manifest_is_made_again(small_dataset, tmp_path):
    out, _ = small_dataset
    changed = copy_dataset(out, tmp_path / "changed")
    (changed / "shard-00000.npz").write_bytes((out / "shard-00002.npz").read_bytes())  # whole, but the wrong one
    write_dataset(changed, 10, seed=7, shape=(24, 20), shard_size=4, workers=1)
    assert file_hashes(changed) == file_hashes(out)


def test_an_interrupted_write_leaves_no_shard_under_its_name(small_dataset, tmp_path, monkeypatch):
    out, _ = small_dataset
    real_write = dataset.write_npz
    written = []

    def failing_write(path, arrays):
        if len(written) == 1:  # the second shard: half written, then the process "dies"
            open(path, "wb").write(b"PK\x03\x04 partial")
            raise KeyboardInterrupt
        written.append(path)
        real_write(path, arrays)

    target = tmp_path / "interrupted"
    monkeypatch.setattr(dataset, "write_npz", failing_write)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(target, 10, seed=7, shape=(24, 20), shard_size=4, workers=1)
    assert sorted(os.listdir(target)) == ["labels-00000.jsonl", "labels-00001.jsonl", "shard-00000.npz"]
    monkeypatch.setattr(dataset, "write_npz", real_write)
    write_dataset(target, 10, seed=7, shape=(24, 20), shard_size=4, workers=1)
    assert file_hashes(target) == file_hashes(out)


def test_a_directory_with_another_dataset_is_refused(small_dataset, tmp_path):
    out, _ = small_dataset
    other = copy_dataset(out, tmp_path / "other")
    before = file_hashes(other)
    with pytest.raises(InputError, match="another dataset"):
        write_dataset(other, 10, seed=8, shape=(24, 20), shard_size=4, workers=1)
    (other / "manifest.json").unlink()
    with pytest.raises(InputError, match="another dataset"):
        write_dataset(other, 12, seed=7, shape=(24, 20), shard_size=4, workers=1)
    assert file_hashes(other) == {k: v for k, v in before.items() if k != "manifest.json"}


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"n": 0}, "number of samples"),
        ({"n": -4}, "number of samples"),
        ({"shard_size": 0}, "shard size"),
        ({"workers": 0}, "workers"),
        ({"seed": -1}, "seed"),
        ({"shape": (4, 32)}, "shape"),
        ({"cell_size": 0.0}, "cell size"),
        ({"positive_fraction": 1.5}, "--positive-fraction"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_written(tmp_path, kwargs, says):
    arguments = {"n": 4, "seed": 1, "shape": (16, 16), **kwargs}
    with pytest.raises(InputError, match=says):
        write_dataset(tmp_path / "out", arguments.pop("n"), **arguments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [("{not json", "not valid JSON"), ("[]", "not a profile"), ("[1, 2]", "not a profile"), ('"x"', "not a profile")],
)
def test_bad_profile_files_are_refused(tmp_path, text, says):
    path = tmp_path / "profile.json"
    path.write_text(text)
    with pytest.raises(InputError, match=says):
        load_profiles(path)
    with pytest.raises(InputError, match=says):
        write_dataset(tmp_path / "out", 4, seed=1, shape=(16, 16), profile=path)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="not found"):
        load_profiles(tmp_path / "missing.json")
