"""``defoscan fill``: a COG with velocity_filled and velocity bands; bad input is one line and exit status 2."""

import numpy as np
import pytest
import rasterio

from defoscan.cli import main


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_fill_writes_a_cog_with_filled_and_observed_bands(amsterdam_csv, tmp_path, capsys):
    out = tmp_path / "filled.tif"
    status, stdout, _ = run_cli(["fill", amsterdam_csv, "--out", out, "--max-distance", "50"], capsys)
    assert status == 0 and "wrote" in stdout
    with rasterio.open(out) as src:
        assert src.descriptions == ("velocity_filled", "velocity")
        assert src.crs is not None and src.tags()["fill_method"] == "completion"
        filled, observed = src.read(1), src.read(2)
    seen = np.isfinite(observed)
    np.testing.assert_array_equal(filled[seen], observed[seen])
    assert np.isfinite(filled).sum() > seen.sum()


@pytest.mark.parametrize("method", ["nearest", "knn"])
def test_fill_method_and_cell_size_options(amsterdam_csv, tmp_path, capsys, method):
    out = tmp_path / f"{method}.tif"
    status, _, _ = run_cli(["fill", amsterdam_csv, "--out", out, "--method", method, "--cell-size", "20"], capsys)
    assert status == 0
    with rasterio.open(out) as src:
        assert src.tags()["fill_method"] == method and src.res == (20.0, 20.0)


@pytest.mark.parametrize(
    ("extra", "says"),
    [(["--method", "kriging"], "unknown fill method"), (["--max-distance", "-5"], "must be positive")],
)
def test_bad_options_are_one_line_and_status_2(amsterdam_csv, tmp_path, capsys, extra, says):
    out = tmp_path / "x.tif"
    status, _, err = run_cli(["fill", amsterdam_csv, "--out", out, *extra], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and says in err
    assert not out.exists()


def test_missing_input_is_one_line_and_status_2(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    status, _, err = run_cli(["fill", missing, "--out", tmp_path / "x.tif"], capsys)
    assert status == 2 and str(missing) in err and "Traceback" not in err
