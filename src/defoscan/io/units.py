"""Velocity units: what files declare and what users pass with ``--units``, converted to mm/yr.

:func:`velocity_unit` says which unit a file is read in and where it came from (``--units``, the file, or the
mm/yr default), so that the plausibility checks of :mod:`defoscan.io.filters` can name it; a ``--units`` that
contradicts the unit the file declares is warned about (the user may know better, but rarely does).
"""

from dataclasses import dataclass

from defoscan.errors import InputError
from defoscan.log import warn

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


@dataclass(frozen=True)
class VelocityUnit:
    """The unit a file's velocities are read in.

    Attributes
    ----------
    name : str
        As written (``"m/year"``, ``"mm/yr"``).
    factor : float
        To mm/yr.
    source : str
        ``"--units"``, ``"declared"`` (by the file: a tag, an attribute, a column name, the product) or
        ``"default"`` (mm/yr, the file declares nothing).
    """

    name: str
    factor: float
    source: str

    @property
    def label(self):
        """How messages name it: ``m/yr (--units)``, ``m/year (declared by the file)``, ``mm/yr (the default)``."""
        where = {"--units": "--units", "declared": "declared by the file", "default": "the default"}[self.source]
        return f"{self.name} ({where})"


def velocity_unit(path, given=None, declared=None, default="mm/yr"):
    """The unit to read a file's velocities in: ``--units`` first, else what the file declares, else ``default``.

    Parameters
    ----------
    path : str
        Named in messages.
    given : str, optional
        ``--units``.
    declared : str, optional
        The unit the file declares (a GeoTIFF ``units`` tag, MintPy's ``UNIT``, a column named ``velocity_m_yr``).
    default : str
        Without either.

    Returns
    -------
    VelocityUnit

    Raises
    ------
    InputError
        An unknown unit (:func:`mm_per_year`).
    """
    if given:
        unit = VelocityUnit(str(given), mm_per_year(given, path), "--units")
        if declared:
            try:
                own = mm_per_year(declared, path)
            except InputError:  # the file's own word is no unit defoscan knows: --units settles it, silently
                own = unit.factor
            if own != unit.factor:
                warn(f"{path}: --units {given} overrides the unit the file declares ({declared})")
        return unit
    if declared:
        return VelocityUnit(str(declared), mm_per_year(declared, path), "declared")
    return VelocityUnit(str(default), mm_per_year(default, path), "default")
