"""The one grid model: where a map's cells lie, from which every stage takes its transform, bounds and chunks.

A :class:`GridSpec` is a north-up grid whose cell edges lie at whole multiples of the cell size: its CRS, its cell
size, the global index of its first cell (rows counted southwards from northing 0, columns eastwards from easting 0,
in cells) and its shape. Everything else is derived from these: the pixel-corner geotransform (rasterio,
rioxarray), the bounds, the cell centres (xarray coordinates), the chunk layout and windows of a chunked run, and
the attributes a run's Zarr store keeps (:meth:`GridSpec.zarr_attrs`, :meth:`GridSpec.from_zarr_attrs`). Grids of
different runs with the same cell size then share cell edges (they mosaic), and a chunk is itself a GridSpec.
"""

from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS


@dataclass(frozen=True)
class GridSpec:
    """A north-up grid aligned on whole multiples of its cell size.

    Parameters
    ----------
    crs : pyproj.CRS
        A projected CRS (metres).
    cell_size : float
        Metres.
    row0, col0 : int
        Global index of the first (north-west) cell: its north edge is at northing ``-row0 * cell_size``, its west
        edge at easting ``col0 * cell_size``.
    height, width : int
        Rows and columns.
    """

    crs: CRS
    cell_size: float
    row0: int
    col0: int
    height: int
    width: int

    @classmethod
    def aligned(cls, crs, cell_size, west, east, south, north):
        """The smallest aligned grid that holds a region; a point on its east or south edge falls inside."""
        cell_size = float(cell_size)
        col0 = int(np.floor(west / cell_size))
        top = int(np.ceil(north / cell_size))
        width = int(np.floor(east / cell_size)) - col0 + 1
        height = top - int(np.ceil(south / cell_size)) + 1
        return cls(CRS.from_user_input(crs), cell_size, -top, col0, height, width)

    @classmethod
    def from_corner(cls, crs, cell_size, west, north, width, height):
        """The grid whose north-west corner is ``(west, north)`` (whole multiples of ``cell_size``)."""
        cell_size = float(cell_size)
        return cls(
            CRS.from_user_input(crs),
            cell_size,
            int(round(-north / cell_size)),
            int(round(west / cell_size)),
            int(height),
            int(width),
        )

    @classmethod
    def from_transform(cls, crs, transform, shape):
        """The grid of a north-up pixel-corner geotransform and ``(rows, columns)``."""
        return cls.from_corner(crs, abs(transform.a), transform.c, transform.f, shape[1], shape[0])

    @classmethod
    def from_zarr_attrs(cls, attrs):
        """The grid a run's store records (:meth:`zarr_attrs`)."""
        top, left = (int(v) for v in attrs["origin"])
        height, width = (int(v) for v in attrs["shape"])
        return cls(CRS.from_wkt(attrs["crs"]), float(attrs["cell_size"]), top, left, height, width)

    @property
    def west(self):
        """Easting of the west edge."""
        return self.col0 * self.cell_size

    @property
    def north(self):
        """Northing of the north edge."""
        return -self.row0 * self.cell_size

    @property
    def shape(self):
        """``(rows, columns)``."""
        return (self.height, self.width)

    @property
    def origin(self):
        """Global ``(row, column)`` index of the first cell (the lattices of the scan, fill and background)."""
        return (self.row0, self.col0)

    @property
    def transform(self):
        """Pixel-corner geotransform."""
        return Affine(self.cell_size, 0.0, self.west, 0.0, -self.cell_size, self.north)

    @property
    def bounds(self):
        """``[west, east, south, north]``."""
        return [
            self.west,
            self.west + self.width * self.cell_size,
            self.north - self.height * self.cell_size,
            self.north,
        ]

    def coords(self):
        """Cell-centre coordinates ``{"x": eastings, "y": northings}`` (northings decreasing)."""
        half = self.cell_size / 2
        return {
            "x": self.west + half + self.cell_size * np.arange(self.width),
            "y": self.north - half - self.cell_size * np.arange(self.height),
        }

    def chunks(self, chunk):
        """Chunk rows and columns of the layout in ``chunk x chunk`` cells."""
        return (-(-self.height // chunk), -(-self.width // chunk))

    def chunk_slices(self, i, j, chunk):
        """Rows and columns of chunk ``(i, j)`` in the map."""
        r, c = i * chunk, j * chunk
        return (slice(r, min(r + chunk, self.height)), slice(c, min(c + chunk, self.width)))

    def window(self, rows, cols):
        """The grid of a window of this one (slices of rows and columns, clipped to the map)."""
        r0, r1, _ = rows.indices(self.height)
        c0, c1, _ = cols.indices(self.width)
        return GridSpec(self.crs, self.cell_size, self.row0 + r0, self.col0 + c0, r1 - r0, c1 - c0)

    def chunk(self, i, j, chunk):
        """The grid of chunk ``(i, j)``."""
        return self.window(*self.chunk_slices(i, j, chunk))

    def zarr_attrs(self):
        """What a run's store records of its grid (:meth:`from_zarr_attrs` reads it back)."""
        return {
            "origin": [self.row0, self.col0],
            "shape": [self.height, self.width],
            "cell_size": self.cell_size,
            "crs": self.crs.to_wkt(),
        }
