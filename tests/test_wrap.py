import numpy as np
import pytest
import xarray as xr

from defoscan.wrap import (
    ENHANCED_INTERVALS,
    SENTINEL1_HALF_WAVELENGTH_MM,
    channel_names,
    enhanced_intervals,
    fringe_channels,
    fringe_counts,
    interval_for_period,
    make_input,
    velocity_channels,
    wrap_phase,
)


def mogi_bowl(peak, shape=(64, 64), radius=8.0):
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    r2 = ((y - shape[0] // 2) ** 2 + (x - shape[1] // 2) ** 2) / radius**2
    return peak / (1.0 + r2) ** 1.5


def fringes_along(channels, row):
    """Fringes crossed along one row of (cos, sin) channel pairs: unwrapped phase range / 2 pi, per interval."""
    phase = np.arctan2(channels[1::2, row], channels[0::2, row])
    unwrapped = np.unwrap(phase.astype(np.float64), axis=-1)
    return (unwrapped.max(axis=-1) - unwrapped.min(axis=-1)) / (2 * np.pi)


@pytest.mark.parametrize("interval", [2.0, 6.3, 27.7])
def test_wrap_phase_known_values(interval):
    v = np.array([interval / 4, interval, -interval / 2, 0.0, interval / 2 - 1e-9, -interval / 4])
    expected = np.array([np.pi / 2, 0.0, -np.pi, 0.0, np.pi, -np.pi / 2])
    np.testing.assert_allclose(wrap_phase(v, interval), expected, atol=1e-6)


def test_wrap_phase_range_and_periodicity():
    rng = np.random.default_rng(0)
    v = rng.uniform(-200, 200, 1000)
    phase = wrap_phase(v, 6.0)
    assert phase.min() >= -np.pi and phase.max() < np.pi
    for k in (-3, 1, 7):
        shifted = wrap_phase(v + k * 6.0, 6.0)
        # Compare on the circle: -pi and pi (just below) are the same phase.
        np.testing.assert_allclose(np.exp(1j * shifted), np.exp(1j * phase), atol=1e-9)
    # and it is the same as the complex exponential's angle
    np.testing.assert_allclose(np.exp(1j * phase), np.exp(2j * np.pi * v / 6.0), atol=1e-9)


def test_wrap_phase_nan_and_xarray():
    da = xr.DataArray([[np.nan, 1.0], [-2.0, 3.0]], dims=("y", "x"), coords={"y": [1, 0], "x": [0, 1]})
    out = wrap_phase(da, 4.0)
    assert isinstance(out, xr.DataArray) and list(out.y.values) == [1, 0]
    assert np.isnan(out.values[0, 0])
    np.testing.assert_allclose(out.values[0, 1:], [np.pi / 2])
    np.testing.assert_allclose(out.values[1], [-np.pi, -np.pi / 2])
    with pytest.raises(ValueError):
        wrap_phase(da, 0.0)


def test_interval_for_period():
    assert interval_for_period(27.7, 1.0) == 27.7
    assert interval_for_period(10.0, 0.5) == 20.0
    assert SENTINEL1_HALF_WAVELENGTH_MM == pytest.approx(27.73, abs=0.01)


def test_cos_sin_continuous_across_wrap_phase_is_not():
    interval, step = 5.0, 0.01
    v = np.arange(-12.0, 12.0, step)[None, :]  # crosses the wrap at +-2.5, 7.5, ...
    cs = fringe_channels(v, [interval])
    jumps = np.hypot(np.diff(cs[0], axis=-1), np.diff(cs[1], axis=-1))
    # chord of an arc of 2 pi step / interval radians, float32 rounding aside
    assert jumps.max() <= 2 * np.pi * step / interval * 1.001 + 1e-6
    ph = fringe_channels(v, [interval], representation="phase")
    assert ph.shape == (1, 1, v.shape[1])
    assert ph.min() >= -1.0 and ph.max() < 1.0
    assert np.abs(np.diff(ph[0], axis=-1)).max() > 1.9  # the artificial edge at each fringe boundary
    # the phase channel is phase / pi, on the circle (float32 puts values just under 1 at -1)
    np.testing.assert_allclose(np.exp(1j * np.pi * ph[0]), np.exp(1j * wrap_phase(v, interval)), atol=1e-6)
    np.testing.assert_allclose(ph[0, 0, :400], v[0, :400] / 2.5 + 4, atol=1e-5)  # -12 to -8 mm/yr: no wrap


def test_fringe_channels_values_nan_and_validity():
    v = np.array([[0.0, 0.5, np.nan], [1.0, -0.25, 2.0]])
    out = fringe_channels(v, [1.0, 2.0])
    assert out.dtype == np.float32 and out.shape == (4, 2, 3)
    assert np.isnan(out[:, 0, 2]).all() and np.isfinite(np.delete(out.reshape(4, -1), 2, axis=1)).all()
    # cos, sin at interval 1: v = 0.5 -> phase -pi; v = -0.25 -> -pi/2
    np.testing.assert_allclose(out[:2, 0, 1], [-1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[:2, 1, 1], [0.0, -1.0], atol=1e-6)
    # cos, sin at interval 2: v = 0.5 -> pi/2
    np.testing.assert_allclose(out[2:, 0, 1], [0.0, 1.0], atol=1e-6)
    valid = fringe_channels(v, [1.0, 2.0], with_validity=True)
    assert valid.shape == (5, 2, 3) and valid.dtype == np.float32
    np.testing.assert_array_equal(valid[-1], [[1, 1, 0], [1, 1, 1]])
    assert (valid[:-1, 0, 2] == 0).all()
    np.testing.assert_array_equal(valid[:-1][:, np.isfinite(v)], out[:, np.isfinite(v)])
    with pytest.raises(ValueError):
        fringe_channels(v, [1.0], representation="hsv")
    with pytest.raises(ValueError):
        fringe_channels(v[0], [1.0])


def test_enhanced_intervals_rule():
    intervals = enhanced_intervals()
    np.testing.assert_allclose(intervals, [2.0, np.sqrt(40.0), 20.0])
    assert ENHANCED_INTERVALS == tuple(intervals)
    # every speed in 2-100 mm/yr, either sign, shows 1-5 fringes at one interval at least
    v = np.concatenate([np.geomspace(2.0, 100.0, 2001), -np.linspace(2.0, 100.0, 2001)])
    counts = fringe_counts(v, intervals)
    assert counts.shape == (v.size, 3)
    in_band = (counts >= 1.0 - 1e-9) & (counts <= 5.0 + 1e-9)
    assert in_band.any(axis=1).all()
    # and just outside the range it fails: 1.9 mm/yr shows < 1 fringe everywhere, 105 > 5 at every interval
    assert (fringe_counts(1.9, intervals) < 1).all() and (fringe_counts(105.0, intervals) > 5).all()
    # other ranges and bands follow the same rule: fewest intervals, first = v_min / f_min
    np.testing.assert_allclose(enhanced_intervals((4.0, 100.0), (0.5, 5.0)), [8.0, 20.0])
    np.testing.assert_allclose(enhanced_intervals((2.0, 2.0), (1.0, 5.0)), [2.0])
    wide = enhanced_intervals((1.0, 1000.0), (1.0, 3.0))
    assert np.all(wide[1:] / wide[:-1] <= 3.0 + 1e-9) and wide[0] == 1.0 and wide[-1] == pytest.approx(1000 / 3)
    with pytest.raises(ValueError):
        enhanced_intervals((2.0, 100.0), (5.0, 1.0))


def test_fringe_counts_known():
    np.testing.assert_allclose(fringe_counts(-10.0, [2.0, 5.0, 20.0]), [5.0, 2.0, 0.5])


def test_slow_bowl_shows_fringes_only_when_over_wrapped():
    bowl = mogi_bowl(-5.0)  # 5 mm/yr subsidence, falls to ~1% at the window edge
    row = bowl.shape[0] // 2
    enhanced = make_input(bowl, mode="enhanced", with_validity=False)
    fringes = fringes_along(enhanced, row)  # from the rim to the centre (the range of the unwrapped phase)
    assert fringes.max() >= 1.0
    drop = bowl[row].max() - bowl[row].min()  # 5 mm/yr less the 1.4 % left at the window's edge
    assert drop == pytest.approx(5 * (1 - 17**-1.5))
    np.testing.assert_allclose(fringes, drop / np.array([2.0, np.sqrt(40), 20.0]), rtol=1e-4)
    single = make_input(bowl, mode="single", with_validity=False)
    assert single.shape == (2, 64, 64)
    assert fringes_along(single, row)[0] < 0.25
    assert fringes_along(single, row)[0] == pytest.approx(drop / SENTINEL1_HALF_WAVELENGTH_MM, rel=1e-4)


def test_velocity_channels():
    v = np.array([[0.0, 2.0, -20.0, 100.0, np.nan]])
    out = velocity_channels(v, scale=20.0)
    assert out.dtype == np.float32 and out.shape == (1, 1, 5)
    np.testing.assert_allclose(out[0, 0, :4], np.tanh(v[0, :4] / 20.0), rtol=1e-6)
    assert np.isnan(out[0, 0, 4]) and np.abs(out[0, 0, :4]).max() < 1.0
    clipped = velocity_channels(v, scale=10.0, squash="clip", with_validity=True)
    np.testing.assert_allclose(clipped[0, 0], [0.0, 0.2, -1.0, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(clipped[1, 0], [1, 1, 1, 1, 0])
    with pytest.raises(ValueError):
        velocity_channels(v, squash="log")


@pytest.mark.parametrize(
    ("kwargs", "channels"),
    [
        ({"mode": "enhanced"}, 7),
        ({"mode": "enhanced", "with_validity": False}, 6),
        ({"mode": "enhanced", "representation": "phase"}, 4),
        ({"mode": "enhanced", "intervals": [3.0, 9.0]}, 5),
        ({"mode": "single"}, 3),
        ({"mode": "single", "intervals": [4.0], "representation": "phase"}, 2),
        ({"mode": "raw"}, 2),
        ({"mode": "raw", "with_validity": False}, 1),
    ],
)
def test_make_input_channels(kwargs, channels):
    v = mogi_bowl(-30.0, shape=(16, 20))
    v[3:5, 4:9] = np.nan
    out = make_input(xr.DataArray(v, dims=("y", "x")), **kwargs)
    assert out.shape == (channels, 16, 20) and out.dtype == np.float32
    assert len(channel_names(**kwargs)) == channels
    if kwargs.get("with_validity", True):
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out[-1], np.isfinite(v))
    else:
        assert np.isnan(out[:, 3:5, 4:9]).all()


def test_make_input_defaults_and_errors():
    v = mogi_bowl(-8.0, shape=(8, 8))
    np.testing.assert_array_equal(make_input(v), fringe_channels(v, ENHANCED_INTERVALS, with_validity=True))
    np.testing.assert_array_equal(
        make_input(v, mode="single"), fringe_channels(v, [SENTINEL1_HALF_WAVELENGTH_MM], with_validity=True)
    )
    assert channel_names(mode="single", with_validity=False) == ["cos@27.7", "sin@27.7"]
    assert channel_names(mode="raw") == ["velocity", "valid"]
    with pytest.raises(ValueError):
        make_input(v, mode="single", intervals=[2.0, 6.0])
    with pytest.raises(ValueError):
        make_input(v, mode="triple")
