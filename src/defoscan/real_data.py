"""Where the real InSAR maps are: never bundled, read from a folder beside the project.

The real maps used for the demo's real datasets, the evaluation's real-data checks and ``make evaluate`` were
published by others (credits in the README, origins in DATA_PROVENANCE.md); the project does not redistribute them.
They are read from the folder in ``DEFOSCAN_REAL_DATA``, else from ``../shared/data/real`` beside the repository (or
beside the working directory), where CI keeps them. Each dataset lies in a numbered subfolder.
"""

import os
from pathlib import Path

from defoscan.errors import InputError

ENV = "DEFOSCAN_REAL_DATA"
RELATIVE = Path("..") / "shared" / "data" / "real"  # from a clone's root, as CI lays it out

# Dataset name -> (subfolder, files). The registry of real maps the package knows by name.
DATASETS = {
    "kirishima": ("01_kirishima_mintpy_alos2", ("velocity.h5",)),
    "ustica": (
        "03_egms_ustica_italy",
        ("EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip", "EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip"),
    ),
}


def real_data_dir(explicit=None):
    """The real-data folder: ``explicit``, else ``$DEFOSCAN_REAL_DATA``, else ``../shared/data/real``.

    The relative default is looked for beside the repository this package was imported from (an editable install)
    and beside the working directory.

    Parameters
    ----------
    explicit : str or os.PathLike, optional

    Returns
    -------
    pathlib.Path or None
        The first candidate that is a directory; None when there is none.
    """
    if explicit is not None:
        return Path(explicit) if Path(explicit).is_dir() else None
    if os.environ.get(ENV):
        path = Path(os.environ[ENV])
        return path if path.is_dir() else None
    repository = Path(__file__).resolve().parents[2]  # src/defoscan/real_data.py -> the clone's root
    for root in (repository, Path.cwd()):
        path = (root / RELATIVE).resolve()
        if path.is_dir():
            return path
    return None


def dataset_files(name, folder):
    """The files of the real dataset ``name`` in ``folder``.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    folder : str or os.PathLike
        The real-data folder (with the numbered subfolders) or the dataset's own subfolder.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        When ``name`` is unknown, ``folder`` is not a directory or a file of the dataset is missing in it.
    """
    if name not in DATASETS:
        raise InputError(None, f"unknown real dataset {name!r}; choose from {', '.join(DATASETS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such real-data folder" if not folder.exists() else "not a directory")
    subfolder, names = DATASETS[name]
    base = folder / subfolder if (folder / subfolder).is_dir() else folder
    missing = [n for n in names if not (base / n).is_file()]
    if missing:
        raise InputError(base, f"not the {name} data: missing {', '.join(missing)}")
    return [str(base / n) for n in names]
