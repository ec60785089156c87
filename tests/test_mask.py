"""``defoscan.mask``: which cells a polygon or raster mask keeps, the same for any rectangle of the grid."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.transform import from_origin

from defoscan.errors import InputError
from defoscan.mask import keep_cells, read_mask

CRS = "EPSG:32633"
TRANSFORM = from_origin(500_000, 4_200_000, 100, 100)  # 100 m cells


def test_polygons_keep_the_cells_whose_centre_is_inside(tmp_path):
    # A box 250-550 m east and 150-420 m south of the corner holds the centres 350 and 450 m east, 250 and 350 m south.
    box = shapely.box(500_250, 4_200_000 - 420, 500_550, 4_200_000 - 150)
    gpd.GeoDataFrame(geometry=[box], crs=CRS).to_file(tmp_path / "keep.geojson")
    keep = keep_cells(read_mask(tmp_path / "keep.geojson", CRS), TRANSFORM, (6, 8), CRS)
    expected = np.zeros((6, 8), dtype=bool)
    expected[2:4, 3:5] = True  # centres 250 and 350 m south; 350 and 450 m east
    np.testing.assert_array_equal(keep, expected)


def test_polygons_in_another_crs_and_any_rectangle_agree(tmp_path):
    lonlat = gpd.GeoSeries([shapely.Point(500_400, 4_199_600).buffer(250)], crs=CRS).to_crs(4326)
    gpd.GeoDataFrame(geometry=lonlat).to_file(tmp_path / "keep.gpkg")
    mask = read_mask(tmp_path / "keep.gpkg", CRS)
    whole = keep_cells(mask, TRANSFORM, (10, 10), CRS)
    assert 10 <= whole.sum() <= 30  # about pi * 2.5² cells
    part = keep_cells(mask, TRANSFORM * Affine.translation(3, 2), (5, 6), CRS)
    np.testing.assert_array_equal(part, whole[2:7, 3:9])


def test_raster_keeps_non_zero_cells(tmp_path):
    values = np.zeros((4, 4), dtype=np.uint8)
    values[1:3, 2:] = 1
    with rasterio.open(
        tmp_path / "m.tif",
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="uint8",
        crs=CRS,
        transform=from_origin(500_000, 4_200_000, 200, 200),
    ) as dst:
        dst.write(values, 1)
    keep = keep_cells(read_mask(tmp_path / "m.tif", CRS), TRANSFORM, (8, 8), CRS)
    np.testing.assert_array_equal(keep, np.kron(values, np.ones((2, 2), dtype=np.uint8)).astype(bool))


def test_bad_masks_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_mask(tmp_path / "missing.geojson", CRS)
    (tmp_path / "points.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
        '"geometry": {"type": "Point", "coordinates": [13.0, 38.0]}}]}'
    )
    with pytest.raises(InputError, match="no polygon"):
        read_mask(tmp_path / "points.geojson", CRS)
    (tmp_path / "broken.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(InputError, match="cannot read"):
        read_mask(tmp_path / "broken.gpkg", CRS)
