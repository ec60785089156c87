"""The working-CRS rule: British National Grid in Great Britain, EPSG:3035 for EGMS, else the local UTM zone."""

import numpy as np
import pytest
from pyproj import CRS

from defoscan.crs import crs_label, straddles_antimeridian, unwrap_longitudes, utm_crs, working_crs
from defoscan.grid import raster_working_crs
from defoscan.io import read_input
from defoscan.points import points_crs

GREAT_BRITAIN = {
    "London": (-0.13, 51.51),
    "Edinburgh": (-3.19, 55.95),
    "Cardiff": (-3.18, 51.48),
    "Penzance": (-5.54, 50.12),
    "Isles of Scilly": (-6.31, 49.92),
    "Stranraer": (-5.03, 54.90),
    "Campbeltown, Kintyre": (-5.61, 55.42),
    "Mull of Kintyre": (-5.78, 55.31),
    "Ramsey Island, Pembrokeshire": (-5.34, 51.86),
    "St Davids": (-5.27, 51.88),
    "Islay": (-6.25, 55.78),
    "Stornoway": (-6.39, 58.21),
    "Lerwick": (-1.15, 60.15),
    "Dover": (1.31, 51.13),
    "Dungeness": (0.97, 50.91),
    "Lowestoft": (1.75, 52.48),
}

IRELAND = {  # the island: the Republic and Northern Ireland (which uses the Irish grid, not 27700)
    "Dublin": (-6.26, 53.35, 32629),
    "Wicklow": (-6.04, 52.98, 32629),
    "Cork": (-8.47, 51.90, 32629),
    "Galway": (-9.05, 53.27, 32629),
    "Derry": (-7.31, 55.00, 32629),
    "Belfast": (-5.93, 54.60, 32630),
    "Donaghadee": (-5.54, 54.64, 32630),
    "Rathlin Island": (-6.20, 55.29, 32629),
}

FRANCE = {  # the French Channel coast inside the latitude/longitude box of EPSG:27700's area of use
    "Calais": (1.86, 50.95),
    "Boulogne-sur-Mer": (1.61, 50.73),
    "Dieppe": (1.08, 49.92),
    "Fecamp": (0.37, 49.76),
}


@pytest.mark.parametrize("place", GREAT_BRITAIN)
def test_great_britain_is_british_national_grid(place):
    lon, lat = GREAT_BRITAIN[place]
    assert working_crs([lon], [lat]).to_epsg() == 27700


@pytest.mark.parametrize("place", IRELAND)
def test_ireland_is_utm_not_27700(place):
    lon, lat, epsg = IRELAND[place]
    assert working_crs([lon], [lat]).to_epsg() == epsg


@pytest.mark.parametrize("place", FRANCE)
def test_france_is_utm_not_27700(place):
    lon, lat = FRANCE[place]
    assert working_crs([lon], [lat]).to_epsg() == 32631


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (130.88, 31.91, 32652),  # Kirishima
        (4.90, 52.37, 32631),  # Amsterdam
        (13.19, 38.71, 32633),  # Ustica
        (-122.4, 37.8, 32610),  # San Francisco
        (-70.6, -33.4, 32719),  # Santiago, southern hemisphere
        (151.2, -33.9, 32756),  # Sydney
        (179.99, 10.0, 32660),
        (-180.0, 10.0, 32601),
        (180.0, 10.0, 32601),  # the antimeridian wraps to zone 1
        (0.0, 0.0, 32631),
        (-0.001, -0.001, 32730),
    ],
)
def test_elsewhere_utm(lon, lat, epsg):
    assert working_crs([lon], [lat]).to_epsg() == epsg
    assert utm_crs(lon, lat).to_epsg() == epsg


def test_egms_is_3035_anywhere():
    for lon, lat in [(-0.13, 51.51), (13.19, 38.71), (-6.26, 53.35), (130.88, 31.91)]:
        assert working_crs([lon], [lat], egms=True).to_epsg() == 3035


def test_median_point_decides_and_nan_ignored():
    lon = np.array([4.9, 4.91, 4.92, 130.0, np.nan])
    lat = np.array([52.3, 52.31, 52.32, 31.9, np.nan])
    assert working_crs(lon, lat).to_epsg() == 32631


def test_longitudes_across_the_antimeridian_are_made_continuous():
    np.testing.assert_array_equal(unwrap_longitudes([179.5, -179.5, np.nan]), [179.5, 180.5, np.nan])
    np.testing.assert_array_equal(unwrap_longitudes([-10.0, 10.0]), [-10.0, 10.0])  # Greenwich: as they are
    np.testing.assert_array_equal(unwrap_longitudes([-179.5], straddling=True), [180.5])  # a part of such data
    assert straddles_antimeridian(-179.5, 179.5) and not straddles_antimeridian(-90.0, 90.0)


def test_points_on_both_sides_of_the_antimeridian_are_in_their_utm_zone():
    # Half the points each side over Fiji: the naive median longitude is 0, UTM zone 31 on the far side of the globe.
    lon = np.array([179.6, 179.8, 179.9, -179.9, -179.8, -179.6])
    lat = np.full(6, -17.0)
    assert working_crs(lon, lat).to_epsg() in (32701, 32760)


def test_crs_label():
    assert crs_label(CRS.from_epsg(3035)) == "EPSG:3035"
    assert crs_label("EPSG:27700") == "EPSG:27700"
    custom = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=131.7 +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs")
    assert crs_label(custom) == custom.name


def test_readers_apply_the_rule(amsterdam_csv, kirishima_velocity_h5, ustica_l2b_022_zip):
    assert points_crs(read_input(amsterdam_csv)).to_epsg() == 32631
    assert points_crs(read_input(ustica_l2b_022_zip)).to_epsg() == 3035
    assert raster_working_crs(read_input(kirishima_velocity_h5)).to_epsg() == 32652


def test_lonlat_table_in_great_britain_goes_to_27700(tmp_path):
    path = tmp_path / "london.csv"
    path.write_text("lon,lat,velocity\n-0.13,51.51,1.0\n-0.12,51.52,2.0\n")
    ds = read_input(path)
    assert points_crs(ds).to_epsg() == 27700
    # Trafalgar Square area: BNG easting ~530 km, northing ~180 km.
    assert 525_000 < ds["x"].values[0] < 535_000 and 175_000 < ds["y"].values[0] < 185_000
