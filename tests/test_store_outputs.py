"""Outputs written from a store in bounded memory: the COG of write_cog block by block, the overview decimated."""

import os

import numpy as np
import pytest
import rasterio
import zarr
from affine import Affine
from matplotlib.image import imread
from rasterio.enums import ColorInterp
from shapely.geometry import box

from defoscan.figures import block_mean, write_overview
from defoscan.outputs import write_cog
from defoscan.regions import detections_frame
from defoscan.store_outputs import window_shape, write_cog_from_arrays

TRANSFORM = Affine(50, 0, 600000, 0, -50, 5800000)
CRS = "EPSG:32631"


def sparse_map(shape, seed=0):
    """Mostly NaN, with a patch of data and a few isolated cells, as a country's map is."""
    rng = np.random.default_rng(seed)
    velocity = np.full(shape, np.nan, dtype=np.float32)
    velocity[200:900, 100:700] = rng.normal(0, 5, (700, 600))
    velocity[rng.integers(0, shape[0], 50), rng.integers(0, shape[1], 50)] = rng.normal(0, 5, 50)
    count = np.where(np.isfinite(velocity), rng.integers(1, 9, shape), 0).astype(np.uint32)
    return velocity, count


def store_of(path, arrays, chunk):
    group = zarr.open_group(str(path), mode="w")
    for name, values in arrays.items():
        fill = np.nan if values.dtype.kind == "f" else 0
        stored = group.create_array(
            name, shape=values.shape, chunks=(chunk, chunk), dtype=values.dtype, fill_value=fill
        )
        stored[...] = values
    return group


@pytest.mark.parametrize("window", [None, 300])
def test_cog_from_store_is_the_file_write_cog_writes(tmp_path, window):
    velocity, count = sparse_map((1500, 1300))
    group = store_of(tmp_path / "s.zarr", {"velocity": velocity, "count": count}, chunk=256)
    tags = {"units": "mm/yr", "software": "defoscan test"}
    names = ["velocity A", "count A"]
    units = ["mm/yr", "points"]
    write_cog(
        tmp_path / "whole.tif", list(zip(names, [velocity, count], strict=True)), TRANSFORM, CRS, tags=tags, units=units
    )
    write_cog_from_arrays(
        tmp_path / "blocks.tif",
        list(zip(names, [group["velocity"], group["count"]], strict=True)),
        TRANSFORM,
        CRS,
        tags=tags,
        units=units,
        window=window,
    )
    with rasterio.open(tmp_path / "whole.tif") as whole, rasterio.open(tmp_path / "blocks.tif") as blocks:
        assert {**blocks.profile, "nodata": None} == {**whole.profile, "nodata": None}
        assert np.isnan(blocks.nodata) and np.isnan(whole.nodata)
        assert blocks.descriptions == whole.descriptions == tuple(names)
        assert blocks.tags() == whole.tags() and blocks.tags()["units"] == "mm/yr"
        assert blocks.units == whole.units == tuple(units)
        assert blocks.colorinterp == whole.colorinterp == (ColorInterp.gray, ColorInterp.undefined)
        assert blocks.crs == whole.crs and blocks.crs.to_epsg() == 32631
        assert blocks.transform == whole.transform == TRANSFORM
        assert blocks.overviews(1) == whole.overviews(1) == [2, 4]
        assert blocks.tags(ns="IMAGE_STRUCTURE") == whole.tags(ns="IMAGE_STRUCTURE")
        assert blocks.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(blocks.read(), whole.read())
        np.testing.assert_array_equal(blocks.read(1), velocity)
        np.testing.assert_array_equal(blocks.read(2), count.astype(np.float32))
        for factor in (2, 4):
            shape = (1500 // factor + (1500 % factor > 0), 1300 // factor + (1300 % factor > 0))
            np.testing.assert_array_equal(blocks.read(out_shape=(2, *shape)), whole.read(out_shape=(2, *shape)))
    assert (tmp_path / "blocks.tif").read_bytes() == (tmp_path / "whole.tif").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["blocks.tif", "s.zarr", "whole.tif"]  # no intermediate left


@pytest.mark.parametrize("window", [None, 512])  # read whole (a small map), and block by block
def test_count_cog_from_store_is_the_file_write_cog_writes(tmp_path, window):
    _, count = sparse_map((1500, 1300))
    group = store_of(tmp_path / "s.zarr", {"a": count, "b": count * 2}, chunk=256)
    options = {"units": "points", "nodata": 0}
    write_cog(tmp_path / "whole.tif", [("count A", count), ("count B", count * 2)], TRANSFORM, CRS, **options)
    write_cog_from_arrays(
        tmp_path / "blocks.tif",
        [("count A", group["a"]), ("count B", group["b"])],
        TRANSFORM,
        CRS,
        **options,
        window=window,
    )
    assert (tmp_path / "blocks.tif").read_bytes() == (tmp_path / "whole.tif").read_bytes()
    with rasterio.open(tmp_path / "blocks.tif") as src:
        assert src.nodata == 0 and src.units == ("points", "points")
        np.testing.assert_array_equal(src.read(2), count * 2)


def test_cog_from_numpy_and_failure_leaves_nothing(tmp_path):
    velocity, _ = sparse_map((1100, 1000))
    write_cog_from_arrays(tmp_path / "v.tif", [("velocity", velocity)], TRANSFORM, CRS)
    with rasterio.open(tmp_path / "v.tif") as src:
        np.testing.assert_array_equal(src.read(1), velocity)

    class Broken:
        shape = velocity.shape

        def __getitem__(self, key):
            if key[0].start > 0:
                raise OSError("store unreadable")
            return velocity[key]

    with pytest.raises(OSError, match="unreadable"):
        write_cog_from_arrays(tmp_path / "b.tif", [("velocity", Broken())], TRANSFORM, CRS, window=512)
    assert sorted(os.listdir(tmp_path)) == ["v.tif"]
    with pytest.raises(ValueError, match="one shape"):
        write_cog_from_arrays(tmp_path / "c.tif", [("a", velocity), ("b", velocity[1:])], TRANSFORM, CRS)


def test_windows_are_whole_chunks():
    group = zarr.open_group(store=zarr.storage.MemoryStore(), mode="w")
    assert window_shape(group.create_array("a", shape=(9000, 9000), chunks=(1000, 1500), dtype="f4")) == (2000, 1500)
    assert window_shape(group.create_array("b", shape=(9000, 9000), chunks=(8192, 8192), dtype="f4")) == (8192, 8192)
    assert window_shape(np.zeros((3, 3))) == (2048, 2048)
    assert window_shape(np.zeros((3, 3)), 100) == (100, 100)


def numpy_block_mean(values, factor):
    rows, columns = -(-values.shape[0] // factor), -(-values.shape[1] // factor)
    padded = np.full((rows * factor, columns * factor), np.nan)
    padded[: values.shape[0], : values.shape[1]] = values
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        return np.nanmean(
            padded.reshape(rows, factor, columns, factor).transpose(0, 2, 1, 3).reshape(rows, columns, -1), -1
        )


@pytest.mark.parametrize(("factor", "window"), [(3, None), (7, 50), (1, 64), (16, 10)])
def test_block_mean_is_nanmean_of_blocks(tmp_path, factor, window):
    velocity, _ = sparse_map((1030, 777))
    group = store_of(tmp_path / "s.zarr", {"velocity": velocity}, chunk=128)
    reduced = block_mean(group["velocity"], factor, window=window)
    assert reduced.dtype == np.float32 and reduced.shape == (-(-1030 // factor), -(-777 // factor))
    np.testing.assert_allclose(reduced, numpy_block_mean(velocity, factor), rtol=1e-6, atol=1e-6)


def overview_frame(crs=CRS):
    records = [
        {
            "geometry": box(620000, 5760000, 625000, 5765000),
            "score": 0.9,
            "n_points": 10,
            "mean_velocity": -5.0,
            "peak_velocity": -9.0,
            "sign": "subsidence",
            "kind": "deformation",
            "track": track,
            "detector": "threshold",
        }
        for track in ("A", "D")
    ]
    return detections_frame(records, crs)


def test_overview_of_a_large_map_is_decimated(tmp_path, monkeypatch):
    maps = {track: sparse_map((1000, 800), seed)[0] for seed, track in enumerate(("A", "D"))}
    group = store_of(tmp_path / "s.zarr", maps, chunk=256)
    shown = []
    import defoscan.figures as figures

    original = figures._write_panels

    def spy(path, panels, frame, limit, dpi, truth=None):
        shown.extend(panels)
        return original(path, panels, frame, limit, dpi, truth=truth)

    monkeypatch.setattr(figures, "_write_panels", spy)
    tracks = [(t, group[t]) for t in maps]
    write_overview(tmp_path / "o.png", tracks, overview_frame(), TRANSFORM, CRS, max_pixels=300)
    assert [panel[0] for panel in shown] == ["A", "D"]
    for (_, image, extent, label), values in zip(shown, maps.values(), strict=True):
        assert image.shape == (250, 200)  # 1000 x 800 in blocks of 4 x 4 (3 x 3 would leave 334 > 300 rows)
        np.testing.assert_allclose(image, numpy_block_mean(values, 4), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(extent, [600.0, 640.0, 5750.0, 5800.0])
        assert label == "EPSG:32631"
    image = imread(tmp_path / "o.png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0]  # two panels side by side
