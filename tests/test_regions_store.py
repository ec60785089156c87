"""The regions stage on a store, chunk by chunk: the same regions, labels and polygons as the whole map in memory."""

import numpy as np
import pytest
import zarr
from affine import Affine
from scipy import ndimage

from defoscan.regions_store import regions_store, store_polygons
from defoscan.scan_store import write_map
from defoscan.store import create_array
from whole_map import whole_map_polygons, whole_map_regions

ORIGIN = (-100003, 8017)  # not a multiple of the background's block (20 cells)
CELL, BACKGROUND = 50.0, 1000.0
TRANSFORM = Affine(CELL, 0.0, ORIGIN[1] * CELL, 0.0, -CELL, -ORIGIN[0] * CELL)


def a_map(seed=0, shape=(150, 170)):
    """Velocity with a ramp, noise and gaps; a probability map with regions of every kind; point counts."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    velocity = 3.0 + 0.03 * xx - 0.02 * yy + rng.normal(0.0, 1.0, shape)
    velocity[rng.random(shape) < 0.1] = np.nan
    velocity[100:, :25] = np.nan  # a sea
    probability = ndimage.gaussian_filter(rng.random(shape), 3)
    probability = np.clip((probability - probability.mean()) / probability.std() * 0.2 + 0.3, 0.0, 1.0)
    probability[140:, 140:] = np.nan  # not scanned
    # Blobs crossing chunk borders (16, 23, 32, 64), with bowls in the velocity.
    for centre, radius, amplitude in (((31, 60), 7, -12.0), ((64, 128), 9, 8.0), ((95, 46), 6, -6.0)):
        bowl = np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / radius**2)
        velocity += amplitude * bowl
        probability = np.maximum(probability, 0.95 * bowl)
    # Two 2 x 2 blocks touching only at a corner across a border of every chunking tried, a seed in one only.
    probability[62:64, 94:96] = 0.45
    probability[64:66, 96:98] = 0.45
    probability[63, 94] = 0.8
    velocity[62:66, 94:98] += 6.0  # both blocks rise: one part of one sign, which needs its seed (cnn_regions)
    probability[61:67, 93:99][probability[61:67, 93:99] < 0.4] = 0.1  # nothing else joins them
    for rows, cols in ((slice(109, 117), slice(99, 107)), (slice(119, 123), slice(149, 152))):
        probability[rows, cols] = 0.1  # nothing else joins the next two
    probability[110:116, 100:106] = 0.45  # above the lower cut-off, no seed: not a region
    probability[120:122, 150:151] = 0.9  # a seed, but two cells: dropped by min_cells
    probability[130:134, 60:64] = 0.9  # 16 cells, but 3 points: dropped by min_points
    probability[129:135, 59:65][probability[129:135, 59:65] < 0.4] = 0.1
    probability[10:13, 140:143] = 0.9  # the same score as the one above and the next one: ties
    probability[9:14, 139:144][probability[9:14, 139:144] < 0.4] = 0.1
    count = rng.integers(1, 4, shape).astype(np.uint32)
    count[130:134, 60:64] = 0
    count[130, 60:63] = 1
    count[~np.isfinite(velocity)] = 0
    return velocity.astype(np.float32), probability.astype(np.float32), count


def store_of(path, velocity, probability, count, chunk):
    group = write_map(path, velocity, ORIGIN, chunk=chunk, count=count)
    create_array(group, "probability", "float32", chunk, np.nan)[...] = probability
    return group


def assert_same_regions(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if key.startswith("mean") or key == "background_velocity":  # means: summed in another order
                assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12)
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("chunk", [16, 64])
def test_min_velocity_drops_the_same_regions(chunk, tmp_path):
    velocity, probability, count = a_map()
    store_of(tmp_path / "run.zarr", velocity, probability, count, chunk)
    # The map's regions are wide (random probability blobs joined to the bowls): their means are small, and the
    # bowls are kept by their peaks (5 x 1 mm/yr).
    options = {"low_threshold": 0.4, "background_size": BACKGROUND, "min_velocity": 1.0}
    regions = regions_store(tmp_path / "run.zarr", cell_size=CELL, threshold=0.5, chunk=chunk, **options)
    labels, expected = whole_map_regions(probability, velocity, count, CELL, 0.5, origin=ORIGIN, **options)
    everything = whole_map_regions(probability, velocity, count, CELL, 0.5, origin=ORIGIN, low_threshold=0.4)[1]
    assert 3 <= len(expected) < len(everything) - 10
    by_mean = [abs(r["mean_relative"]) >= 1.0 for r in expected]
    by_peak = [abs(r["peak_relative"]) >= 5.0 for r in expected]
    assert all(m or p for m, p in zip(by_mean, by_peak, strict=True))
    assert any(by_mean)
    assert_same_regions(regions, expected)
    assert np.array_equal(zarr.open_group(str(tmp_path / "run.zarr"), mode="r")["labels"][...], labels)


@pytest.mark.parametrize("chunk", [16, 23, 64])
def test_store_regions_equal_the_whole_map_regions(chunk, tmp_path):
    velocity, probability, count = a_map()
    store_of(tmp_path / "run.zarr", velocity, probability, count, chunk)
    options = {"low_threshold": 0.4, "background_size": BACKGROUND, "min_cells": 4, "min_points": 4}
    regions = regions_store(tmp_path / "run.zarr", cell_size=CELL, threshold=0.5, chunk=chunk, **options)
    labels, expected = whole_map_regions(probability, velocity, count, CELL, 0.5, origin=ORIGIN, **options)
    assert len(expected) >= 5
    assert_same_regions(regions, expected)
    stored = zarr.open_group(str(tmp_path / "run.zarr"), mode="r")["labels"][...]
    assert stored.dtype == np.int32 and np.array_equal(stored, labels)
    corner = labels[63, 95]
    assert corner > 0 and labels[64, 96] == corner  # joined across the corner, kept through the seed in one half
    assert not labels[110:116, 100:106].any() and not labels[120:122, 150].any() and not labels[130:134, 60:64].any()


def test_ties_in_score_window_and_peak(tmp_path):
    """Equal scores, equal window starts, peaks of equal magnitude and opposite signs in different chunks."""
    shape = (96, 96)
    velocity = np.zeros(shape, dtype=np.float32)  # background exactly 0: residuals exactly the velocities
    probability = np.zeros(shape, dtype=np.float32)
    # A (a column) and B (a hook around it) both start their window at row 10, column 20; A's first cell comes first.
    probability[10:14, 20] = 0.9
    probability[10, 22:27] = 0.9
    probability[10:17, 26] = 0.9
    probability[16, 20:27] = 0.9
    # C crosses the chunk border at column 32: -5 in chunk (0, 0) on row 41, +5 in chunk (0, 1) on row 40 (first).
    probability[40:43, 28:36] = 0.9
    velocity[41, 29] = -5.0
    velocity[40, 34] = 5.0
    # D: equal magnitudes with opposite signs in one chunk, the negative one first in row-major order.
    probability[70:74, 70:74] = 0.9
    velocity[70, 73] = -4.0
    velocity[71, 70] = 4.0
    count = np.ones(shape, dtype=np.uint32)
    store_of(tmp_path / "run.zarr", velocity, probability, count, 32)
    regions = regions_store(tmp_path / "run.zarr", cell_size=CELL, threshold=0.5, background_size=BACKGROUND, chunk=32)
    labels, expected = whole_map_regions(
        probability, velocity, count, CELL, 0.5, background_size=BACKGROUND, origin=ORIGIN
    )
    assert_same_regions(regions, expected)
    assert np.array_equal(zarr.open_group(str(tmp_path / "run.zarr"), mode="r")["labels"][...], labels)
    assert labels[10, 20] == 1 and labels[10, 22] == 2
    assert regions[labels[40, 30] - 1]["peak_velocity"] == 5.0
    # Split by sign: the -4 cell is a subsidence part of one cell (under min_cells), the rest D's uplift part.
    assert regions[labels[70, 70] - 1]["peak_velocity"] == 4.0 and labels[70, 73] == 0


def test_no_seed_gives_no_regions_and_empty_labels(tmp_path):
    velocity, probability, count = a_map(seed=1)
    store_of(tmp_path / "run.zarr", velocity, np.minimum(probability, 0.49), count, 32)
    assert regions_store(tmp_path / "run.zarr", cell_size=CELL, threshold=0.5, low_threshold=0.3, chunk=32) == []
    assert not zarr.open_group(str(tmp_path / "run.zarr"), mode="r")["labels"][...].any()


def assert_same_polygons(got, expected):
    assert list(got) == list(expected)
    for label, geometry in expected.items():
        assert got[label].area == geometry.area, label
        assert got[label].equals(geometry), label


@pytest.mark.parametrize("chunk", [16, 23, 64])
def test_store_polygons_equal_the_whole_map_polygons(chunk, tmp_path):
    velocity, probability, count = a_map()
    store_of(tmp_path / "run.zarr", velocity, probability, count, chunk)
    regions_store(tmp_path / "run.zarr", cell_size=CELL, threshold=0.5, low_threshold=0.4, chunk=chunk)
    labels = zarr.open_group(str(tmp_path / "run.zarr"), mode="r")["labels"][...]
    assert_same_polygons(
        store_polygons(tmp_path / "run.zarr", TRANSFORM, chunk=chunk), whole_map_polygons(labels, TRANSFORM)
    )


@pytest.mark.parametrize("chunk", [4, 7, 16])
def test_store_polygons_of_ragged_labels_touching_at_corners(chunk, tmp_path):
    rng = np.random.default_rng(chunk)
    labels = np.zeros((40, 45), dtype=np.int32)
    labels[rng.random(labels.shape) < 0.45] = 1
    labels, _ = ndimage.label(labels, np.ones((3, 3), dtype=bool))  # many corner-only contacts, some across borders
    labels[0:4, 0:4] = 0
    labels[3, 3] = labels[4, 4] = 9999  # across the corner of four chunks when the chunk is 4
    labels[8, 2:4] = labels[9, 1] = 7777  # two pieces of one label, apart: a MultiPolygon
    labels[30, 40] = 7777
    group = zarr.open_group(str(tmp_path / "run.zarr"), mode="w")
    group.create_array("labels", shape=labels.shape, chunks=(chunk, chunk), dtype="int32", fill_value=0)[...] = labels
    expected = whole_map_polygons(labels, TRANSFORM)
    assert any(not geometry.is_valid for geometry in expected.values())  # GDAL's self-touching rings are there
    assert_same_polygons(store_polygons(tmp_path / "run.zarr", TRANSFORM, chunk=chunk), expected)
