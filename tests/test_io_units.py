"""Velocity units: the unit a file is read in, where it came from, and a --units that contradicts the file."""

import logging

import numpy as np
import pandas as pd
import pytest

from defoscan.errors import InputError
from defoscan.io import ReadOptions, read_input
from defoscan.io.units import velocity_unit


@pytest.fixture
def warnings_logged(caplog):
    caplog.set_level(logging.WARNING, logger="defoscan")
    return caplog


def test_the_unit_and_where_it_came_from(warnings_logged):
    assert velocity_unit("f", None, None).label == "mm/yr (the default)"
    assert velocity_unit("f", None, "m/year").label == "m/year (declared by the file)"
    unit = velocity_unit("f", "cm/yr", None)
    assert (unit.factor, unit.source, unit.label) == (10.0, "--units", "cm/yr (--units)")
    assert velocity_unit("f", "mm/yr", "mm/year").factor == 1.0  # the same unit, spelt otherwise: no warning
    assert not warnings_logged.records
    with pytest.raises(InputError, match="unknown velocity unit 'furlongs'"):
        velocity_unit("f", None, "furlongs")


def test_units_contradicting_the_file_are_warned_about(tmp_path, warnings_logged):
    # Issue 24: --units cm/yr on a file whose column says mm/yr.
    rng = np.random.default_rng(0)
    path = tmp_path / "p.csv"
    frame = {"lon": 4.9 + rng.uniform(0, 0.05, 200), "lat": 52.3 + rng.uniform(0, 0.05, 200)}
    pd.DataFrame({**frame, "velocity_mm_yr": rng.normal(0, 2, 200)}).to_csv(path, index=False)
    ds = read_input(path, ReadOptions(units="cm/yr"))
    assert ds.sizes["point"] == 200
    (message,) = [r.getMessage() for r in warnings_logged.records]
    assert message == f"{path}: --units cm/yr overrides the unit the file declares (mm/yr)"
