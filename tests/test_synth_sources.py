import json

import numpy as np
import pytest
from scipy import special

from defoscan.synth.sources import (
    KINDS,
    PEAK_SPEED,
    compaction,
    dome,
    draw_source,
    evaluate_source,
    landslide,
    mining_bowl,
    mogi,
    quarry,
    tunnel_trough,
)


def _grid(xc, yc, half, n):
    """n x n cell centres (n odd, so (xc, yc) is one of them), north-up."""
    xs = xc + np.linspace(-half, half, n)
    ys = yc + np.linspace(half, -half, n)
    return np.meshgrid(xs, ys)


def _speed(e, n, u):
    return np.sqrt(e**2 + n**2 + u**2)


# --- Mogi ---------------------------------------------------------------------------------------------------------


def test_mogi_against_formula_by_hand():
    # d = 1000 m, dV = -1e5 m^3/yr, nu = 0.25: (1 - nu) dV / pi = -23873.24 m^3/yr.
    c = -23873.241463784303
    e, n, u = mogi(np.array([500.0, 1500.0, 500.0]), np.array([200.0, 200.0, 1200.0]), 500.0, 200.0, 1000.0, -1e5)
    # Above the source: u_z = c / d^2 = -0.023873 m/yr; at r = d (east, then north): R^3 = 2^1.5 d^3.
    assert u[0] == pytest.approx(-23.873241, rel=1e-6)
    assert e[0] == 0.0 and n[0] == 0.0
    assert u[1] == pytest.approx(c * 1000.0 / (2**1.5 * 1e9) * 1000.0, rel=1e-9)
    assert u[1] == pytest.approx(-8.440465, rel=1e-6)
    assert e[1] == pytest.approx(u[1]) and n[1] == 0.0  # r = d: radial equals vertical, pointing inward
    assert n[2] == pytest.approx(u[1]) and e[2] == pytest.approx(0.0, abs=1e-12)


def test_mogi_radial_symmetry_and_peak():
    depth, dv = 800.0, 3e4
    r = 650.0
    angles = np.deg2rad(np.arange(0, 360, 30))
    x, y = 100.0 + r * np.cos(angles), -50.0 + r * np.sin(angles)
    e, n, u = mogi(x, y, 100.0, -50.0, depth, dv)
    assert np.allclose(u, u[0])
    radial = e * np.cos(angles) + n * np.sin(angles)
    tangential = -e * np.sin(angles) + n * np.cos(angles)
    assert np.allclose(radial, radial[0]) and radial[0] > 0  # inflation pushes outward
    assert np.allclose(tangential, 0.0, atol=1e-12)
    assert radial[0] / u[0] == pytest.approx(r / depth)
    xg, yg = _grid(100.0, -50.0, 3000.0, 301)
    _, _, ug = mogi(xg, yg, 100.0, -50.0, depth, dv)
    assert ug.max() == pytest.approx(0.75 * dv / np.pi / depth**2 * 1000.0)
    assert ug[150, 150] == ug.max()


# --- mining -------------------------------------------------------------------------------------------------------


def test_mining_volume_equals_s_max_times_area():
    # A wide panel (width 400 m, r = 100 m): the influence function integrates to 1, so the trough holds S_max * A.
    kw = dict(depth=200.0, extraction_rate=50.0, panel_width=400.0, panel_length=1000.0, tan_beta=2.0)
    kw["subsidence_factor"] = 0.8
    x, y = _grid(0.0, 0.0, 1200.0, 481)
    cell = x[0, 1] - x[0, 0]
    _, _, up = mining_bowl(x, y, 0.0, 0.0, **kw)
    s_max = 0.8 * 50.0
    assert -up.sum() * cell**2 == pytest.approx(s_max * 400.0 * 1000.0, rel=0.02)
    # Supercritical: the centre reaches S_max; and three panels hold three times the volume.
    assert up.min() == pytest.approx(-s_max, rel=1e-3)
    x3, y3 = _grid(0.0, 0.0, 1800.0, 601)
    _, _, up3 = mining_bowl(x3, y3, 0.0, 0.0, n_panels=3, gap=40.0, **kw)
    cell3 = x3[0, 1] - x3[0, 0]
    assert -up3.sum() * cell3**2 == pytest.approx(3 * s_max * 400.0 * 1000.0, rel=0.02)
    assert up3.min() >= -s_max * (1 + 1e-9)  # overlapping panels never exceed S_max


def test_mining_edge_values_and_symmetry():
    # Far from the panel ends, above a long edge: half of S_max down, and B * S_max / r = S_max / sqrt(2 pi) across.
    kw = dict(depth=150.0, extraction_rate=20.0, panel_width=1500.0, panel_length=6000.0, tan_beta=1.5)
    kw["subsidence_factor"] = 1.0
    e, n, u = mining_bowl(np.array([750.0, -750.0]), np.array([0.0, 0.0]), 0.0, 0.0, **kw)
    assert u == pytest.approx([-10.0, -10.0], rel=1e-6)
    assert e == pytest.approx([-20.0 / np.sqrt(2 * np.pi), 20.0 / np.sqrt(2 * np.pi)], rel=1e-6)  # towards the panel
    assert n == pytest.approx([0.0, 0.0], abs=1e-9)
    x, y = _grid(0.0, 0.0, 800.0, 161)
    kw = dict(depth=300.0, extraction_rate=30.0, panel_width=200.0, panel_length=500.0)
    e, n, u = mining_bowl(x, y, 0.0, 0.0, **kw)
    assert np.allclose(u, u[:, ::-1]) and np.allclose(u, u[::-1, :])
    assert np.allclose(e, -e[:, ::-1]) and np.allclose(n, -n[::-1, :])
    assert np.unravel_index(np.argmin(u), u.shape) == (80, 80)
    assert e[80, 80] == pytest.approx(0.0, abs=1e-12) and n[80, 80] == pytest.approx(0.0, abs=1e-12)
    # Turning the panel by 90 deg turns the trough: long axis east-west.
    _, _, u90 = mining_bowl(x, y, 0.0, 0.0, azimuth_deg=90.0, **kw)
    assert np.allclose(u90, u.T)


# --- Peck trough --------------------------------------------------------------------------------------------------


def test_peck_trough_width_and_volume_loss():
    depth, k, s = 20.0, 0.5, 12.0
    i = k * depth
    # A long east-west tunnel; a cross-section at mid-length.
    t = np.linspace(-200.0, 200.0, 4001)
    e, n, u = tunnel_trough(np.zeros_like(t), t, -2000.0, 0.0, 2000.0, 0.0, depth, s, k)
    assert u.min() == pytest.approx(-s, rel=1e-9)
    assert np.interp(i, t, u) == pytest.approx(-s * np.exp(-0.5), rel=1e-4)
    volume = -np.trapezoid(u, t)
    assert volume == pytest.approx(np.sqrt(2 * np.pi) * i * s, rel=1e-4)
    # Horizontal motion towards the axis, (t / z0) of the settlement: K S exp(-1/2) at t = i.
    assert np.interp(i, t, n) == pytest.approx(-k * s * np.exp(-0.5), rel=1e-4)
    assert np.interp(-i, t, n) == pytest.approx(k * s * np.exp(-0.5), rel=1e-4)
    assert np.allclose(e, 0.0, atol=1e-12)


def test_peck_trough_tapers_at_the_ends():
    depth, k, s = 30.0, 0.3, 10.0
    i = k * depth
    along = np.array([0.0, 1000.0, -i, -5 * i])
    e, n, u = tunnel_trough(along, np.zeros(4), 0.0, 0.0, 1000.0, 0.0, depth, s, k)
    assert u[0] == pytest.approx(-s * 0.5 * special.ndtr(1000.0 / i), rel=1e-9)
    assert u[1] == pytest.approx(u[0], rel=1e-9)
    assert u[2] == pytest.approx(-s * special.ndtr(-1.0) * special.ndtr(1000.0 / i + 1.0), rel=1e-9)
    assert abs(u[3]) < 1e-5 * s
    # Beyond the start the motion points at the start point, i.e. east.
    assert e[2] == pytest.approx(-u[2] * i / depth) and e[2] > 0


# --- landslide ----------------------------------------------------------------------------------------------------


def test_landslide_head_sharper_than_toe_and_direction():
    az, slope, v, length = 130.0, 20.0, 40.0, 600.0
    s = np.linspace(-500.0, 500.0, 2001)  # along the downslope axis through the centre
    a = np.deg2rad(az)
    x, y = 1000.0 + s * np.sin(a), 2000.0 + s * np.cos(a)
    e, n, u = landslide(x, y, 1000.0, 2000.0, length, 300.0, v, az, slope, head_width=10.0, toe_fraction=0.25)
    speed = _speed(e, n, u)
    assert speed.max() == pytest.approx(v)
    assert np.all(speed[s < -length / 2] == 0.0)  # nothing moves above the scarp
    grad = np.abs(np.gradient(speed, s))
    head, toe = grad[s < 0].max(), grad[s > 0].max()
    assert head == pytest.approx(v / 10.0, rel=0.01)
    assert toe == pytest.approx(v * np.sqrt(2) * np.exp(-0.5) / (0.25 * length), rel=0.01)
    assert head > 5 * toe
    assert np.interp(length / 2, s, speed) == pytest.approx(v * np.exp(-1.0), rel=1e-3)
    moving = speed > 0
    unit = np.array(
        [np.sin(a) * np.cos(np.deg2rad(slope)), np.cos(a) * np.cos(np.deg2rad(slope)), -np.sin(np.deg2rad(slope))]
    )
    assert np.allclose(np.stack([e, n, u])[:, moving] / speed[moving], unit[:, None])


# --- quarry -------------------------------------------------------------------------------------------------------


def test_quarry_flat_bottom_and_steep_sides():
    x, y = _grid(0.0, 0.0, 400.0, 801)  # 1 m cells
    e, n, u = quarry(x, y, 0.0, 0.0, 40.0, 200.0, ratio=0.5, azimuth_deg=0.0, squareness=2.0, taper=20.0)
    assert np.all(e == 0.0) and np.all(n == 0.0)
    rho = np.hypot(y / 200.0, x / 100.0)  # long axis north-south
    inner = rho < 1.0 - 10.0 / 100.0
    assert np.all(u[inner] == -40.0)  # flat bottom, exactly
    assert np.all(u[rho > 1.0 + 10.0 / 100.0] == 0.0)
    # Along the short (east) axis the side falls from full to nothing over the 20 m taper.
    row = u[400, 400:]
    assert np.flatnonzero(row > -40.0)[0] == pytest.approx(90, abs=1)
    assert np.flatnonzero(row == 0.0)[0] == pytest.approx(110, abs=1)
    assert row[100] == pytest.approx(-20.0)  # half way at the outline


# --- dome ---------------------------------------------------------------------------------------------------------


def test_dome_shape_and_outward_motion():
    e, n, u = dome(np.array([0.0, 0.0, 2000.0]), np.array([0.0, 2000.0, 0.0]), 0.0, 0.0, 20.0, 2000.0, 0.5, 0.0, 0.1)
    assert u[0] == 20.0 and e[0] == 0.0 and n[0] == 0.0
    assert u[1] == pytest.approx(20.0 * np.exp(-0.5))  # one radius along the (north) long axis
    assert u[2] == pytest.approx(20.0 * np.exp(-2.0))  # one radius = two short radii east
    assert n[1] == pytest.approx(0.1 * u[1]) and e[2] == pytest.approx(0.1 * u[2] * 2000.0 / (0.25 * 2000.0))
    x, y = _grid(0.0, 0.0, 6000.0, 301)
    sp = _speed(*dome(x, y, 0.0, 0.0, 20.0, 2000.0, 0.5, 30.0, 0.2))
    assert sp.max() == pytest.approx(20.0) and sp[150, 150] == sp.max()


# --- compaction ---------------------------------------------------------------------------------------------------


def test_compaction_follows_built_up_areas():
    x, y = _grid(0.0, 0.0, 5000.0, 201)  # 50 m cells
    built = np.zeros(x.shape, dtype=bool)
    built[20:90, 30:120] = True
    e, n, u = compaction(x, y, built, np.random.default_rng(3), amplitude=6.0, smoothing=100.0)
    assert u.min() == pytest.approx(-6.0) and u.max() <= 0.0
    assert np.all(e == 0.0) and np.all(n == 0.0)
    far = np.ones(x.shape, dtype=bool)
    far[20 - 7 : 90 + 7, 30 - 7 : 120 + 7] = False  # 3 sigma = 6 cells of smoothing around the built-up block
    assert np.all(u[far] == 0.0)
    again = compaction(x, y, built, np.random.default_rng(3), amplitude=6.0, smoothing=100.0)[2]
    assert np.array_equal(u, again)
    assert not np.array_equal(u, compaction(x, y, built, np.random.default_rng(4), amplitude=6.0, smoothing=100.0)[2])
    with pytest.raises(ValueError):
        compaction(x.ravel(), y.ravel(), built.ravel(), np.random.default_rng(3))


# --- draws --------------------------------------------------------------------------------------------------------


def _peak_window(kind, p):
    """A grid around a drawn source's peak, fine enough to resolve it; the centre is a grid node."""
    if kind == "mogi":
        return p["x0"], p["y0"], 3 * p["depth"]
    if kind == "mining":
        r = p["depth"] / p["tan_beta"]
        span = p["n_panels"] * p["panel_width"] + (p["n_panels"] - 1) * p["gap"]
        return p["x0"], p["y0"], max(span, p["panel_length"]) / 2 + 2 * r
    if kind == "dome":
        return p["x0"], p["y0"], 4 * p["radius"]
    if kind == "tunnel":
        i = p["trough_factor"] * p["depth"]
        return (p["x_start"] + p["x_end"]) / 2, (p["y_start"] + p["y_end"]) / 2, 40 * i
    if kind == "landslide":
        return p["x0"], p["y0"], p["length"]
    return p["x0"], p["y0"], 1.5 * p["radius"]  # quarry


@pytest.mark.parametrize("kind", KINDS)
def test_draws_stay_in_documented_range(kind):
    rng = np.random.default_rng(2024)
    extent = (400000.0, 420000.0, 280000.0, 300000.0)
    lo, hi = PEAK_SPEED[kind]
    built = None
    if kind == "compaction":
        xg, yg = _grid(410000.0, 290000.0, 10000.0, 201)
        built = np.random.default_rng(0).random(xg.shape) < 0.3
    peaks = []
    for _ in range(50):
        params, got = draw_source(kind, rng, extent)
        assert got == kind
        assert json.loads(json.dumps(params)) == params
        if kind == "compaction":
            x, y = xg, yg
        else:
            xc, yc, half = _peak_window(kind, params)
            assert extent[0] <= xc <= extent[1] and extent[2] <= yc <= extent[3]
            x, y = _grid(xc, yc, half, 201)
        e, n, u = evaluate_source(kind, params, x, y, built_up=built)
        assert all(np.all(np.isfinite(c)) for c in (e, n, u))
        peak = _speed(e, n, u).max()
        peaks.append(peak)
        assert lo * (1 - 1e-3) <= peak <= hi * (1 + 1e-4), (kind, params, peak)
    # The draws spread over the range, not bunched at one end.
    assert min(peaks) < lo + 0.3 * (hi - lo) and max(peaks) > lo + 0.3 * (hi - lo)


def test_draw_is_reproducible_and_remakes_the_field():
    x, y = _grid(5000.0, 5000.0, 5000.0, 101)
    built = np.random.default_rng(0).random(x.shape) < 0.4
    for kind in KINDS:
        a, _ = draw_source(kind, np.random.default_rng(11), (0.0, 10000.0, 0.0, 10000.0))
        b, _ = draw_source(kind, np.random.default_rng(11), (0.0, 10000.0, 0.0, 10000.0))
        assert a == b
        fa = evaluate_source(kind, a, x, y, built_up=built)
        fb = evaluate_source(kind, json.loads(json.dumps(b)), x, y, built_up=built)
        assert all(np.array_equal(p, q) for p, q in zip(fa, fb, strict=True))
        c, _ = draw_source(kind, np.random.default_rng(12), (0.0, 10000.0, 0.0, 10000.0))
        assert c != a


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        draw_source("volcano", rng, (0.0, 1.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        draw_source("mogi", rng, (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        evaluate_source("compaction", {"amplitude": 2.0}, np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        tunnel_trough(0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 20.0, 5.0)
