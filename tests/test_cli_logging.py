"""What the command line writes on stderr: warnings as one line each, terminal or not; -q, -v; library warnings."""

import logging
import subprocess
import sys

import numpy as np
import pytest

from defoscan.log import collected_warnings, configure_cli_logging, logger, warn


def is_cell_size_warning(line):
    """The warning of a cell size far from the model's (detect words it; the test is about where it goes)."""
    return line.startswith("defoscan: warning: ") and "10 m" in line and "50 m" in line


@pytest.fixture(scope="module")
def points_csv(tmp_path_factory):
    """3,000 points of noise over about 1.3 x 1.3 km near Leeds: a few seconds of detect at 10 m cells."""
    rng = np.random.default_rng(0)
    lon, lat = -1.55 + rng.uniform(0, 0.02, 3000), 53.80 + rng.uniform(0, 0.012, 3000)
    path = tmp_path_factory.mktemp("points") / "points.csv"
    rows = "".join(f"{a:.6f},{b:.6f},{v:.3f}\n" for a, b, v in zip(lon, lat, rng.normal(0, 1, 3000), strict=True))
    path.write_text("longitude,latitude,velocity\n" + rows)
    return path


def defoscan(*args):
    """The real script, stdout and stderr to pipes (no terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "defoscan", *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def restore_logging():
    yield
    configure_cli_logging(0, terminal=False)


# --- the script, off a terminal -----------------------------------------------------------------------------------


def test_warning_reaches_stderr_off_a_terminal(points_csv, tmp_path):
    result = defoscan("detect", points_csv, "--out", tmp_path / "a", "--cell-size", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and is_cell_size_warning(lines[0]), result.stderr  # no stage messages off a terminal
    assert "detection(s)" in result.stdout and "trained on 50 m" not in result.stdout


def test_quiet_silences_the_warning(points_csv, tmp_path):
    result = defoscan("detect", points_csv, "--out", tmp_path / "a", "--cell-size", "10", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "detection(s)" in result.stdout  # the results still


def test_verbose_adds_the_stage_messages(points_csv, tmp_path):
    result = defoscan("-v", "detect", points_csv, "--out", tmp_path / "a", "--cell-size", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "defoscan: reading" and lines[-1] == "defoscan: writing"
    assert "defoscan: scanning all" in lines and sum(map(is_cell_size_warning, lines)) == 1
    assert all(line.startswith("defoscan: ") for line in lines) and "Traceback" not in result.stderr


# --- configure_cli_logging: the handler the command line sets up ---------------------------------------------------


def test_warnings_and_stages_by_verbosity(capsys, restore_logging):
    def shown(verbosity, terminal=False):
        configure_cli_logging(verbosity, terminal=terminal)
        logger.info("reading")
        warn("cells of 10 m\n  (two lines become one)")
        logger.debug("details")
        logger.error("broken")
        return capsys.readouterr().err.splitlines()

    warning, error = "defoscan: warning: cells of 10 m (two lines become one)", "defoscan: error: broken"
    assert shown(0) == [warning, error]
    assert shown(0, terminal=True) == ["defoscan: reading", warning, error]
    assert shown(-1, terminal=True) == [error]
    assert shown(1) == ["defoscan: reading", warning, error]
    assert shown(2) == ["defoscan: reading", warning, "defoscan: details", error]


def test_configuring_again_replaces_the_handler(capsys, restore_logging):
    for _ in range(3):
        configure_cli_logging(0, terminal=False)
    warn("once")
    assert capsys.readouterr().err == "defoscan: warning: once\n"


def test_quiet_runs_still_collect_their_warnings(capsys, restore_logging):
    configure_cli_logging(-1, terminal=False)
    with collected_warnings() as messages:
        warn("cells of 10 m")
    assert messages == ["cells of 10 m"]  # for run.json and the report
    assert capsys.readouterr().err == ""
    assert logger.getEffectiveLevel() <= logging.WARNING


@pytest.mark.parametrize(("verbosity", "shown"), [(0, False), (1, True)])
def test_library_warnings_only_with_verbose(verbosity, shown):
    # A fresh interpreter: Python's warning machinery is process-wide, and pytest holds it in this one.
    code = (
        "import numpy as np; from defoscan.log import configure_cli_logging; "
        f"configure_cli_logging({verbosity}, terminal=False); np.nanmean(np.array([np.nan]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    if shown:
        assert len(lines) == 1 and lines[0].startswith("defoscan: python warning: ")
        assert "RuntimeWarning: Mean of empty slice" in lines[0]
    else:
        assert lines == []
