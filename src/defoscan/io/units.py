"""Velocity units: what files declare and what users pass with ``--units``, converted to mm/yr."""

from defoscan.errors import InputError

_MM_PER_YEAR = {
    "mm/yr": 1.0,
    "mm/year": 1.0,
    "mm/a": 1.0,
    "mm yr-1": 1.0,
    "mm/y": 1.0,
    "mmyr": 1.0,
    "cm/yr": 10.0,
    "cm/year": 10.0,
    "cm/a": 10.0,
    "cm/y": 10.0,
    "m/yr": 1000.0,
    "m/year": 1000.0,
    "m/a": 1000.0,
    "m yr-1": 1000.0,
    "m/y": 1000.0,
    "myr": 1000.0,
}

UNIT_CHOICES = ("mm/yr", "cm/yr", "m/yr")


def mm_per_year(unit, path=None):
    """Factor converting a velocity unit to mm/yr.

    Parameters
    ----------
    unit : str
        A unit such as ``"m/year"`` (MintPy), ``"mm/yr"``, ``"cm/yr"``; case and spaces are ignored.
    path : str, optional
        File named in the error message.

    Returns
    -------
    float

    Raises
    ------
    InputError
        If the unit is not a velocity unit defoscan knows.
    """
    key = str(unit).strip().lower().replace(" ", "").replace("per", "/")
    key = key.replace("yr-1", "/yr").replace("year-1", "/year")
    if key in _MM_PER_YEAR:
        return _MM_PER_YEAR[key]
    if key.replace("/", "") in _MM_PER_YEAR:
        return _MM_PER_YEAR[key.replace("/", "")]
    raise InputError(path, f"unknown velocity unit {unit!r}; use one of {', '.join(UNIT_CHOICES)}")
