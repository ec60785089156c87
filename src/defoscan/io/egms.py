"""European Ground Motion Service products: names, metadata and the geometry they were measured in.

EGMS distributes L2a/L2b (line-of-sight, one burst of one track) and L3 (ortho, one 100 km tile of one component:
U vertical, E east) as zips holding one CSV and one XML. The name carries the track (L2) or component (L3); the
CSV carries ``easting``/``northing`` in EPSG:3035 and velocities in mm/yr.
"""

import re
import xml.etree.ElementTree as ET

_L2 = re.compile(r"EGMS_(L2[ab])_(\d{3})_(\d{4})_IW(\d)_(\w\w)_(\d{4})_(\d{4})_(\d+)", re.IGNORECASE)
_L3 = re.compile(r"EGMS_(L3)_(E\d+N\d+)_100km_([UEN])_(\d{4})_(\d{4})_(\d+)", re.IGNORECASE)


def parse_egms_name(name):
    """Read the product identity from an EGMS file name.

    Parameters
    ----------
    name : str
        A file name such as ``EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip``.

    Returns
    -------
    dict or None
        ``level``, ``track`` (the geometry label used to keep tracks apart: ``T022`` for L2, ``L3-U`` for L3)
        and the other fields of the name; ``None`` if the name is not an EGMS product name.
    """
    match = _L2.search(name)
    if match:
        level, track, burst, swath, pol, start, end, version = match.groups()
        return {
            "level": level.upper().replace("L2A", "L2a").replace("L2B", "L2b"),
            "track": f"T{track}",
            "burst": burst,
            "swath": f"IW{swath}",
            "polarisation": pol.upper(),
            "period": f"{start}-{end}",
            "version": version,
        }
    match = _L3.search(name)
    if match:
        level, tile, component, start, end, version = match.groups()
        return {
            "level": "L3",
            "track": f"L3-{component.upper()}",
            "tile": tile.upper(),
            "component": component.upper(),
            "period": f"{start}-{end}",
            "version": version,
        }
    return None


def read_egms_xml(text):
    """The fields of an EGMS XML metadata file that matter here (product level, track, burst).

    Parameters
    ----------
    text : str or bytes
        The XML document.

    Returns
    -------
    dict
        Keys present in the document among ``product_level``, ``track``, ``burst_id``, ``sub_swath``,
        ``production_date``.
    """
    root = ET.fromstring(text)
    fields = {}
    for key in ("product_level", "track", "burst_id", "sub_swath", "production_date"):
        node = root.find(key)
        if node is not None and node.text:
            fields[key] = node.text.strip()
    return fields


def looks_like_egms_table(names):
    """True when a table's columns are EGMS's (``pid`` with ``easting``/``northing`` and ``mean_velocity``)."""
    lower = {n.strip().lower() for n in names}
    return {"pid", "easting", "northing", "mean_velocity"} <= lower
