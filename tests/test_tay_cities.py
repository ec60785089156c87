"""Every detector on a real city map of Tay et al. (2022): no failure, and the attributes' invariants (issue 16)."""

import numpy as np
import pytest

from defoscan.pipeline import detect
from realmaps import merge_tay_city

# One small city per detector (each a few seconds); benchmarks/tay_cities.py runs all 31 with every detector.
CASES = [("threshold", "Miami"), ("gistar", "BuenosAires"), ("ada", "Barcelona"), ("cnn", "Chittagong")]


@pytest.mark.parametrize(("detector", "city"), CASES)
def test_every_detector_on_a_city_map_gives_consistent_regions(detector, city, tay_city_dir, tmp_path):
    velocity = merge_tay_city(tay_city_dir, city, tmp_path / f"{city}.tif")
    result = detect([velocity], str(tmp_path / "out"), detector=detector)
    frame = result["detections"]
    assert len(frame) > 0  # every one of these cities subsides somewhere
    assert frame.geometry.notna().all() and (frame.geometry.area > 0).all()  # a polygon for every region
    sign = np.where(frame["sign"] == "subsidence", -1, 1)
    assert (np.sign(frame["mean_relative"]) == sign).all() and (np.sign(frame["peak_relative"]) == sign).all()
    # as mapped = background + relative (each rounded to 0.01 mm/yr)
    assert np.allclose(frame["mean_velocity"], frame["background_velocity"] + frame["mean_relative"], atol=0.02)
    assert (frame["peak_relative"].abs() >= frame["mean_relative"].abs() - 0.01).all()
