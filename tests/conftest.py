"""Shared fixtures: paths of the real data in ``../shared/data/real`` and their contents read independently."""

import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
# Real data are never copied into the project: they are read where ../shared keeps them (CI always has it), or
# from DEFOSCAN_REAL_DATA. Tests needing them skip with the reason when the folder is absent; with
# DEFOSCAN_REQUIRE_REAL_DATA=1 (set by .ci/run) they fail instead, so CI cannot pass by skipping them.
REAL_DATA = Path(os.environ.get("DEFOSCAN_REAL_DATA") or REPO.parent / "shared" / "data" / "real")
KIRISHIMA = "01_kirishima_mintpy_alos2"
USTICA = "03_egms_ustica_italy"
AMSTERDAM = "08_amsterdam_depsi_stmtools"
CASES = "09_cases_for_development"
TAY = "10_tay_city_velocity"

L2B_022 = "EGMS_L2b_022_0845_IW2_VV_2020_2024_1"
L2B_117 = "EGMS_L2b_117_0227_IW2_VV_2020_2024_1"
L3_U = "EGMS_L3_E45N17_100km_U_2020_2024_1"
L3_E = "EGMS_L3_E45N17_100km_E_2020_2024_1"


def write_villages(directory):
    """Five villages of 1 km, 8 km apart (2,000 points, seeded): gridded at 100 m by default, and at 50 m no scan
    window holds 10 % of cells with data. Returns the CSV's path."""
    import numpy as np

    rng = np.random.default_rng(3)
    centres = [(-1.80 + 0.12 * k, 53.70 + 0.03 * (k % 2)) for k in range(5)]
    lon = np.concatenate([c[0] + rng.random(400) * 0.015 for c in centres])
    lat = np.concatenate([c[1] + rng.random(400) * 0.009 for c in centres])
    path = Path(directory) / "villages.csv"
    pd.DataFrame({"longitude": lon, "latitude": lat, "velocity": rng.normal(0, 1, lon.size)}).to_csv(path, index=False)
    return path


def real_path(*parts):
    """A file or folder of the real data (``REAL_DATA``); skips the test (fails it in CI) when absent."""
    path = REAL_DATA.joinpath(*parts)
    if not path.exists():
        reason = f"real data not found: {path} (set DEFOSCAN_REAL_DATA to the shared data/real folder)"
        if os.environ.get("DEFOSCAN_REQUIRE_REAL_DATA"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def read_zipped_csv(path, usecols=None):
    """The CSV inside an EGMS zip, read with pandas (independently of defoscan)."""
    with zipfile.ZipFile(path) as archive:
        (member,) = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        with archive.open(member) as handle:
            return pd.read_csv(handle, usecols=usecols)


# --- real data (../shared/data/real) ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_data_dir():
    return real_path()


@pytest.fixture(scope="session")
def kirishima_velocity_h5():
    return real_path(KIRISHIMA, "velocity.h5")


@pytest.fixture(scope="session")
def kirishima_coherence_h5():
    return real_path(KIRISHIMA, "temporalCoherence.h5")


@pytest.fixture(scope="session")
def kirishima_height_tif():
    return real_path(KIRISHIMA, "height.tif")


@pytest.fixture(scope="session")
def ustica_l2b_022_zip():
    return real_path(USTICA, f"{L2B_022}.zip")


@pytest.fixture(scope="session")
def ustica_l2b_117_zip():
    return real_path(USTICA, f"{L2B_117}.zip")


@pytest.fixture(scope="session")
def ustica_l3_u_zip():
    return real_path(USTICA, f"{L3_U}.zip")


@pytest.fixture(scope="session")
def ustica_l3_e_zip():
    return real_path(USTICA, f"{L3_E}.zip")


@pytest.fixture(scope="session")
def ustica_l3_u_tiff():
    return real_path(USTICA, f"{L3_U}.tiff")


@pytest.fixture(scope="session")
def ustica_md5_files():
    return {name: real_path(USTICA, f"{name}.md5") for name in (L2B_022, L2B_117)}


@pytest.fixture(scope="session")
def amsterdam_csv():
    return real_path(AMSTERDAM, "example.csv")


@pytest.fixture(scope="session")
def tay_city_dir():
    """The 31 city velocity maps of Tay et al. (2022), four tiles a city (m/yr, EPSG:4326)."""
    return real_path(TAY)


# --- the same files read independently (pandas, zipfile), shared to keep the suite fast ------------------------

EGMS_L2_COLUMNS = [
    "pid",
    "latitude",
    "longitude",
    "easting",
    "northing",
    "height_ortho",
    "temporal_coherence",
    "mean_velocity",
    "mean_velocity_std",
]


@pytest.fixture(scope="session")
def l2b_022_frame(ustica_l2b_022_zip):
    return read_zipped_csv(ustica_l2b_022_zip, usecols=EGMS_L2_COLUMNS)


@pytest.fixture(scope="session")
def l2b_117_frame(ustica_l2b_117_zip):
    return read_zipped_csv(ustica_l2b_117_zip, usecols=EGMS_L2_COLUMNS)


@pytest.fixture(scope="session")
def l3_u_frame(ustica_l3_u_zip):
    return read_zipped_csv(ustica_l3_u_zip)


@pytest.fixture(scope="session")
def l3_e_frame(ustica_l3_e_zip):
    return read_zipped_csv(ustica_l3_e_zip)


@pytest.fixture(scope="session")
def amsterdam_frame(amsterdam_csv):
    return pd.read_csv(amsterdam_csv)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A small synthetic dataset (48 windows of 32 x 32 cells of 50 m, half positive) for training tests."""
    from defoscan.synth.dataset import write_dataset

    out = tmp_path_factory.mktemp("tiny") / "train"
    write_dataset(out, 48, seed=5, shape=(32, 32), shard_size=16, workers=1)
    return out


@pytest.fixture
def one_torch_thread():
    """One torch intra-op thread: on a busy machine torch's spinning worker threads slow tiny passes a hundredfold."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
