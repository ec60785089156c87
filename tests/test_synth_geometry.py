import numpy as np
import pytest

from defoscan.synth.geometry import SENTINEL1, draw_geometry, los_unit_vector, project_to_los


def test_unit_vector_hand_computed():
    # Heading 0 (flying north), right-looking: the radar looks east, so the satellite is west of the target.
    e, n, u = los_unit_vector(30.0, 0.0)
    assert np.allclose([e, n, u], [-0.5, 0.0, np.sqrt(3) / 2])
    # Heading 90 (flying east), right-looking: looks south, satellite north of the target.
    e, n, u = los_unit_vector(30.0, 90.0)
    assert np.allclose([e, n, u], [0.0, 0.5, np.sqrt(3) / 2])
    # Left-looking reverses the horizontal part only.
    e, n, u = los_unit_vector(30.0, 0.0, looking="left")
    assert np.allclose([e, n, u], [0.5, 0.0, np.sqrt(3) / 2])


def test_unit_vector_matches_mintpy_azimuth_convention():
    # MintPy/ISCE-2: (-sin(inc) sin(az), sin(inc) cos(az), cos(inc)), az = 90 - heading for right-looking.
    inc, heading = 37.0, -12.0
    az = np.deg2rad(90.0 - heading)
    expected = [-np.sin(np.deg2rad(inc)) * np.sin(az), np.sin(np.deg2rad(inc)) * np.cos(az), np.cos(np.deg2rad(inc))]
    assert np.allclose(los_unit_vector(inc, heading), expected)


def test_unit_norm_and_broadcasting():
    inc = np.linspace(29.1, 46.0, 7)[:, None]
    heading = np.array([-12.0, -168.0, 45.0])[None, :]
    e, n, u = los_unit_vector(inc, heading)
    assert e.shape == (7, 3)
    assert np.allclose(e**2 + n**2 + u**2, 1.0)


def test_rotating_heading_by_90_rotates_the_horizontal_part():
    inc = 40.0
    e0, n0, _ = los_unit_vector(inc, 10.0)
    e1, n1, _ = los_unit_vector(inc, 100.0)
    # Headings clockwise by 90 deg turn the ground-to-satellite direction clockwise by 90: (e, n) -> (n, -e).
    assert np.allclose([e1, n1], [n0, -e0])
    e2, n2, _ = los_unit_vector(inc, 190.0)
    assert np.allclose([e2, n2], [-e0, -n0])


def test_uplift_projects_to_cos_incidence():
    for inc in (29.1, 35.0, 46.0):
        for heading in (-12.0, -168.0):
            assert project_to_los(0.0, 0.0, 10.0, inc, heading) == pytest.approx(10.0 * np.cos(np.deg2rad(inc)))


def test_east_motion_sign_ascending_vs_descending():
    inc = 39.0
    asc = project_to_los(10.0, 0.0, 0.0, inc, SENTINEL1["ascending"]["heading_deg"])
    desc = project_to_los(10.0, 0.0, 0.0, inc, SENTINEL1["descending"]["heading_deg"])
    # Ascending looks east: eastward motion is away from the satellite; descending looks west: towards it.
    assert asc < 0 < desc
    expected = 10.0 * np.sin(np.deg2rad(inc)) * np.cos(np.deg2rad(12.0))
    assert asc == pytest.approx(-expected)
    assert desc == pytest.approx(expected)
    # Subsidence is negative for both passes.
    assert project_to_los(0.0, 0.0, -5.0, inc, -12.0) < 0
    assert project_to_los(0.0, 0.0, -5.0, inc, -168.0) < 0


def test_north_motion_is_weak_for_near_polar_orbits():
    # Flying nearly north-south, the radar hardly sees north motion: sin(12 deg) of the horizontal look.
    v = project_to_los(0.0, 10.0, 0.0, 40.0, -12.0)
    assert v == pytest.approx(10.0 * np.sin(np.deg2rad(40.0)) * np.sin(np.deg2rad(-12.0)))
    assert abs(v) < 1.4


def test_incidence_varying_across_the_swath():
    inc = np.linspace(30.0, 45.0, 5)[None, :] * np.ones((3, 1))
    up = np.full((3, 5), -8.0)
    los = project_to_los(0.0, 0.0, up, inc, -168.0)
    assert los.shape == (3, 5)
    assert np.allclose(los, -8.0 * np.cos(np.deg2rad(inc)))
    assert np.all(np.diff(los[0]) > 0)  # steeper look sees more of the vertical


def test_draw_geometry_ranges_and_reproducibility():
    draws = [draw_geometry(np.random.default_rng(s)) for s in range(200)]
    assert {d["orbit"] for d in draws} == {"ascending", "descending"}
    for d in draws:
        spec = SENTINEL1[d["orbit"]]
        assert spec["incidence_range_deg"][0] <= d["incidence_deg"] <= spec["incidence_range_deg"][1]
        assert spec["heading_range_deg"][0] <= d["heading_deg"] <= spec["heading_range_deg"][1]
        assert isinstance(d["heading_deg"], float)
    assert draw_geometry(np.random.default_rng(7)) == draw_geometry(np.random.default_rng(7))
    assert draw_geometry(np.random.default_rng(7), orbit="descending")["orbit"] == "descending"
    with pytest.raises(ValueError):
        draw_geometry(np.random.default_rng(7), orbit="sideways")
    with pytest.raises(ValueError):
        los_unit_vector(30.0, 0.0, looking="up")
