"""Shared fixtures: paths of the real files bundled in this repository and their contents read independently.

Demo data lie in the package (``src/defoscan/data``, found through ``importlib.resources``); test-only data in
``tests/data``. Nothing outside the repository is read.
"""

import importlib.resources
import zipfile
from pathlib import Path

import pandas as pd
import pytest

TEST_DATA = Path(__file__).parent / "data"

L2B_022 = "EGMS_L2b_022_0845_IW2_VV_2020_2024_1"
L2B_117 = "EGMS_L2b_117_0227_IW2_VV_2020_2024_1"
L3_U = "EGMS_L3_E45N17_100km_U_2020_2024_1"
L3_E = "EGMS_L3_E45N17_100km_E_2020_2024_1"


def _package_data():
    return Path(str(importlib.resources.files("defoscan") / "data"))


def _existing(path):
    path = Path(path)
    assert path.is_file(), f"bundled data file missing: {path}"
    return path


def read_zipped_csv(path, usecols=None):
    """The CSV inside an EGMS zip, read with pandas (independently of defoscan)."""
    with zipfile.ZipFile(path) as archive:
        (member,) = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        with archive.open(member) as handle:
            return pd.read_csv(handle, usecols=usecols)


# --- demo data (inside the package) ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def package_data_dir():
    return _package_data()


@pytest.fixture(scope="session")
def kirishima_velocity_h5():
    return _existing(_package_data() / "kirishima" / "velocity.h5")


@pytest.fixture(scope="session")
def ustica_l2b_022_zip():
    return _existing(_package_data() / "ustica" / f"{L2B_022}.zip")


@pytest.fixture(scope="session")
def ustica_l2b_117_zip():
    return _existing(_package_data() / "ustica" / f"{L2B_117}.zip")


# --- test data (tests/data) -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kirishima_coherence_h5():
    return _existing(TEST_DATA / "kirishima" / "temporalCoherence.h5")


@pytest.fixture(scope="session")
def kirishima_height_tif():
    return _existing(TEST_DATA / "kirishima" / "height.tif")


@pytest.fixture(scope="session")
def ustica_l3_u_zip():
    return _existing(TEST_DATA / "ustica" / f"{L3_U}.zip")


@pytest.fixture(scope="session")
def ustica_l3_e_zip():
    return _existing(TEST_DATA / "ustica" / f"{L3_E}.zip")


@pytest.fixture(scope="session")
def ustica_l3_u_tiff():
    return _existing(TEST_DATA / "ustica" / f"{L3_U}.tiff")


@pytest.fixture(scope="session")
def ustica_md5_files():
    return {name: _existing(TEST_DATA / "ustica" / f"{name}.md5") for name in (L2B_022, L2B_117)}


@pytest.fixture(scope="session")
def amsterdam_csv():
    return _existing(TEST_DATA / "amsterdam" / "example.csv")


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
