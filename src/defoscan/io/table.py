"""Points tables: CSV/TSV (plain, gzipped or inside a zip such as EGMS's) and Parquet, read in batches.

Only the columns needed are parsed, batch by batch, so a file of hundreds of MB is never held in memory whole;
coordinates are projected to the working CRS batch by batch as they arrive. The dialect (delimiter, decimal comma)
is detected from the first lines or given. Each batch drops its invalid velocities, points below
``--min-coherence`` and outside ``--bbox`` (:mod:`defoscan.io.filters`), the same in memory and streamed; a
column the read uses that the header names twice is refused.
"""

import gzip
import io
import os
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyproj import CRS, Transformer

from defoscan.cores import usable_cores
from defoscan.crs import WGS84, unwrap_longitudes, working_crs
from defoscan.errors import InputError
from defoscan.io.columns import ROLE_NAMES, UNITS_BY_NAME, date_columns, find_column
from defoscan.io.egms import looks_like_egms_table, parse_egms_name, read_egms_xml
from defoscan.io.filters import (
    FillValues,
    SpeedTally,
    bbox_of,
    check_lonlat,
    invalid_velocity,
    low_coherence,
    report_dropped,
    scale_velocity,
    warn_invalid,
)
from defoscan.io.options import ReadOptions
from defoscan.io.units import velocity_unit
from defoscan.points import OPTIONAL_VARIABLES, make_points

BLOCK_SIZE = 16 << 20  # bytes of CSV text per parsed batch: large enough to keep pyarrow's threads busy
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
DECIMALS = (".", ",")
SNIFF_LINES = 50  # lines read to detect the dialect: enough to outvote a few integers or empty fields
# A number written with a decimal comma (9,0177 or -1,5e-3) or point, for counting which one a file uses.
_COMMA_NUMBER = re.compile(r"^\s*\"?[-+]?\d+,\d+(?:[eE][-+]?\d+)?\"?\s*$")
_POINT_NUMBER = re.compile(r"^\s*\"?[-+]?\d*\.\d+(?:[eE][-+]?\d+)?\"?\s*$")


@dataclass(frozen=True)
class TableSource:
    """Where a table's bytes are and how they are laid out."""

    path: str
    kind: str  # "csv" or "parquet"
    names: tuple
    delimiter: str = ","
    decimal: str = "."
    member: str | None = None  # CSV member of a zip
    egms: dict | None = None  # EGMS product identity, from the name or the XML


def open_table(path, options=None):
    """Inspect a table file: its layout, dialect and column names, without reading its body.

    The delimiter (``,`` ``;`` tab ``|``) and the decimal mark (``.`` or ``,``) are those of ``options`` when given,
    else detected from the first lines: the delimiter the header holds most of, and the decimal comma when more
    fields read as numbers with a comma than with a point (the European ``;``-delimited export).

    Parameters
    ----------
    path : str or os.PathLike
    options : defoscan.io.options.ReadOptions, optional

    Returns
    -------
    TableSource

    Raises
    ------
    InputError
        On a corrupt zip, a zip without a CSV, an empty file, or a delimiter or decimal mark the file does not use.
    """
    options = options or ReadOptions()
    path = os.fspath(path)
    name = os.path.basename(path)
    egms = parse_egms_name(name)
    if path.lower().endswith((".parquet", ".pq")):
        try:
            names = tuple(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowInvalid, OSError) as err:
            raise InputError(path, f"not a readable Parquet file ({err})") from None
        return TableSource(path, "parquet", names, egms=egms)
    member = None
    if zipfile.is_zipfile(path):
        member, xml = _zip_members(path)
        if xml is not None:
            egms = {**(egms or {}), **_egms_from_xml(path, xml)}
    elif path.lower().endswith(".zip"):
        raise InputError(path, "corrupt zip archive (cannot read its directory)")
    lines = _first_lines(path, member)
    if not lines or not lines[0].strip():
        raise InputError(path, "empty file: no header line")
    header = lines[0].rstrip("\r\n")
    delimiter = _delimiter(path, header, options.delimiter)
    decimal = _decimal(path, lines[1:], delimiter, options.decimal)
    names = tuple(n.strip().strip('"') for n in header.split(delimiter))
    return TableSource(path, "csv", names, delimiter, decimal, member, egms)


def _delimiter(path, header, given):
    if given is None:
        return max(DELIMITERS, key=header.count)
    delimiter = DELIMITER_NAMES.get(given.strip().lower(), given) if given.strip() else given
    if delimiter not in DELIMITERS:
        raise InputError(path, f"unknown --delimiter {given!r}; use one of , ; tab |")
    found = max(DELIMITERS, key=header.count)
    if delimiter not in header and header.count(found):
        raise InputError(
            path, f"--delimiter {_shown(delimiter)}: the header has none; it looks {_shown(found)}-delimited"
        )
    return delimiter


def _decimal(path, data_lines, delimiter, given):
    if given is not None:
        if given not in DECIMALS:
            raise InputError(path, f"unknown --decimal {given!r}; use . or ,")
        return given
    if delimiter == ",":  # unquoted decimal commas cannot be told from delimiters
        return "."
    fields = [f for line in data_lines for f in line.rstrip("\r\n").split(delimiter)]
    commas = sum(bool(_COMMA_NUMBER.match(f)) for f in fields)
    points = sum(bool(_POINT_NUMBER.match(f)) for f in fields)
    return "," if commas > points else "."


def _shown(delimiter):
    return "tab" if delimiter == "\t" else repr(delimiter)


def read_table(source, options):
    """Read a points table into a points dataset in the working CRS.

    Parameters
    ----------
    source : TableSource
        From :func:`open_table`.
    options : defoscan.io.options.ReadOptions

    Returns
    -------
    xarray.Dataset
        See :mod:`defoscan.points`; ``attrs`` count the rows dropped (:data:`defoscan.io.filters.COUNT_ATTRS`).
    """
    roles = _resolve_columns(source, options)
    unit = _velocity_unit(source, roles, options)
    factor = unit.factor
    geographic = "lon" in roles
    src_crs = WGS84 if geographic else _projected_crs(source, options)
    dates_cols, dates = date_columns(source.names) if options.time_series else ([], None)
    # DePSI displacements are in metres like its velocities; EGMS and others in mm.
    disp_factor = 1000.0 if roles["velocity"].lower() == "pnt_linear" else 1.0

    wanted = list(dict.fromkeys([*roles.values(), *dates_cols]))
    coords = ("lon", "lat") if geographic else ("x", "y")
    scale = {"velocity_std": factor}  # velocity itself is scaled first, to be checked in mm/yr
    parts = {key: [] for key in [*roles, "displacement", "valid"]}
    n_rows = 0
    rows = _RowFilter(source, roles, options, src_crs, unit)
    projector = _BatchProjector(egms=source.egms is not None) if geographic else None
    try:
        for batch in _batches(source, wanted):
            n_rows += batch.num_rows
            columns = {role: _as_float(batch, name) for role, name in roles.items()}
            if geographic:
                check_lonlat(source.path, columns["lon"], columns["lat"])
                projector.submit(columns["lon"], columns["lat"])
            columns["velocity"] = rows.velocity(columns["velocity"])
            parts["valid"].append(rows.keep(columns, coords))
            for role, values in columns.items():
                if role not in coords:  # kept as the float32 the points dataset holds: half the memory
                    values = _float32(scale_velocity(values, scale[role]) if role in scale else values)
                parts[role].append(values)
            if dates_cols:
                stack = _float32(np.column_stack([_as_float(batch, c) for c in dates_cols]))
                parts["displacement"].append(stack * np.float32(disp_factor))
        if n_rows == 0:
            raise InputError(source.path, "empty table: a header but no rows")

        valid = _join(parts.pop("valid"))
        rows.finish(valid.any())
        keep = None if valid.all() else valid  # the usual case is a clean file: no filtering copies then
        # lon/lat stay in their batches: only their median and (rarely) a second projection need them.
        lonlat = [parts.pop(role) for role in coords] if geographic else None
        data = {role: _join(chunks, keep) for role, chunks in parts.items() if chunks}
        if geographic:
            target = working_crs(*_median_point(*lonlat, keep), egms=source.egms is not None)
            if projector.projected_to(target):
                del lonlat  # let go of the parsed lon/lat before joining x/y
                x, y = projector.result(keep)
            else:  # the first batch pointed to another CRS than the whole file does: project again
                x, y = _project(_join(lonlat[0], keep), _join(lonlat[1], keep), WGS84, target)
        else:
            target, x, y = src_crs, data["x"], data["y"]
    finally:
        if projector is not None:
            projector.close()
    optional = {name: data.get(name) for name in OPTIONAL_VARIABLES}
    if dates_cols:
        optional.update(displacement=data["displacement"], time=dates)
    track = (source.egms or {}).get("track")
    points = make_points(
        x,
        y,
        data["velocity"],
        crs=target,
        track=track,
        sources=[source.path],
        crs_declared=not geographic,
        **optional,
    )
    points.attrs.update(rows.counts)
    return points


@dataclass(frozen=True)
class TableStream:
    """A points table opened for streaming (:func:`stream_table`): what its coordinates are, and its batches."""

    path: str
    geographic: bool  # lon/lat in degrees (WGS 84); else x/y in ``crs``
    crs: CRS  # WGS 84 for lon/lat, the declared projected CRS otherwise
    egms: bool
    track: str | None
    batches: object  # iterator of (a, b, velocity): float64 coordinates, float32 mm/yr, valid rows only
    counts: dict  # rows dropped (see defoscan.io.filters.COUNT_ATTRS), complete once the batches are consumed


def stream_table(source, options):
    """Open a points table for reading batch by batch: coordinates as stored, velocity in mm/yr, valid rows only.

    The country-scale read (:mod:`defoscan.points_store`) spills these batches to disk instead of joining them:
    memory is one batch. Columns, units and checks are those of :func:`read_table`.

    Parameters
    ----------
    source : TableSource
    options : defoscan.io.options.ReadOptions

    Returns
    -------
    TableStream
    """
    roles = _resolve_columns(source, options)
    unit = _velocity_unit(source, roles, options)
    geographic = "lon" in roles
    crs = WGS84 if geographic else _projected_crs(source, options)
    coords = ("lon", "lat") if geographic else ("x", "y")
    used = [*coords, "velocity", *(["coherence"] if options.min_coherence is not None else [])]
    read = {role: roles[role] for role in used}
    wanted = list(dict.fromkeys(read.values()))
    rows = _RowFilter(source, roles, options, crs, unit)

    def batches():
        any_kept = False
        for batch in _batches(source, wanted):
            columns = {role: _as_float(batch, name) for role, name in read.items()}
            if geographic:
                check_lonlat(source.path, columns["lon"], columns["lat"])
            columns["velocity"] = rows.velocity(columns["velocity"])
            valid = rows.keep(columns, coords)
            a, b, velocity = (columns[role] for role in (*coords, "velocity"))
            if not valid.all():
                a, b, velocity = a[valid], b[valid], velocity[valid]
            any_kept = any_kept or bool(valid.any())
            yield a, b, velocity.astype(np.float32)
        rows.finish(any_kept)

    track = (source.egms or {}).get("track")
    return TableStream(source.path, geographic, crs, source.egms is not None, track, batches(), rows.counts)


class _RowFilter:
    """The rows of each batch a table reader keeps: finite coordinates and velocity, not a fill value, a velocity
    within ±10 m/yr (:mod:`defoscan.io.filters`), coherence at least ``--min-coherence``, inside ``--bbox``; and the
    counts that judge the whole file's plausibility in its unit (:class:`defoscan.io.filters.SpeedTally`)."""

    def __init__(self, source, roles, options, crs, unit):
        self.path, self.velocity_name, self.options, self.crs = source.path, roles["velocity"], options, crs
        self.unit = unit
        self.box = bbox_of(options, source.path)
        self.fills = FillValues(source.path, options)
        self.speeds = SpeedTally()
        self.counts = {"invalid_velocities": 0}
        if options.min_coherence is not None:
            self.counts["low_coherence_dropped"] = 0
        if self.box is not None:
            self.counts["outside_bbox"] = 0
        self._present = 0  # rows with finite coordinates and a velocity, valid or not

    def velocity(self, raw):
        """A batch's velocities in mm/yr from the column as stored, its fill values (or ``--nodata``) NaN."""
        raw = np.array(raw, dtype=np.float64)
        raw[self.fills.mask(raw)] = np.nan
        if self.fills.count:
            self.counts["fill_values"] = self.fills.count
        return scale_velocity(raw, self.unit.factor)

    def keep(self, columns, coords):
        """Rows of one batch to keep; ``columns`` by role, velocity in mm/yr."""
        a, b, velocity = columns[coords[0]], columns[coords[1]], columns["velocity"]
        keep = np.isfinite(a) & np.isfinite(b) & ~np.isnan(velocity)
        self._present += int(keep.sum())
        invalid = invalid_velocity(velocity)
        self.counts["invalid_velocities"] += int(invalid.sum())
        keep &= ~invalid
        self.speeds.add(velocity[keep])
        if self.options.min_coherence is not None:
            low = low_coherence(columns["coherence"], self.options) & keep
            self.counts["low_coherence_dropped"] += int(low.sum())
            keep &= ~low
        if self.box is not None:
            out = self.box.outside(a, b, self.crs) & keep
            self.counts["outside_bbox"] += int(out.sum())
            keep &= ~out
        return keep

    def finish(self, any_kept):
        """Warn about invalid velocities; raise if no row is left, saying which filter took the last ones (then
        without the warning: a bad input is one line)."""
        if any_kept:
            self.speeds.check(self.path, self.unit)
            self.fills.report()
            warn_invalid(self.path, self.counts["invalid_velocities"])
            report_dropped(self.path, self.counts)
            return
        if self._present == 0 and self.fills.count:
            raise self.fills.none_left()
        if self._present == 0:
            raise InputError(self.path, f"no row has finite coordinates and a finite {self.velocity_name!r} value")
        if self.counts["invalid_velocities"] == self._present:
            raise InputError(
                self.path, f"every {self.velocity_name!r} value is beyond ±10 m/yr or not finite: no valid data"
            )
        if self.counts.get("outside_bbox", 0) == 0:
            raise InputError(self.path, f"no point has a coherence of at least {self.options.min_coherence:g}")
        raise InputError(self.path, f"no points inside {self.box.label}")


def _float32(values):
    """``values`` as float32, the type points datasets hold (values beyond its range become inf, silently)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values).astype(np.float32)


def _resolve_columns(source, options):
    names, given = source.names, options.columns
    roles = {}
    for role in ("lon", "lat", "x", "y", "velocity", *OPTIONAL_VARIABLES):
        column = find_column(names, role, given.get(role))
        if given.get(role) is not None and column is None:
            raise InputError(source.path, f"no column named {given[role]!r} (columns: {_preview(names)})")
        if column is not None:
            roles[role] = column
    egms_xy = source.egms is not None or looks_like_egms_table(names)
    has_lonlat, has_xy = "lon" in roles and "lat" in roles, "x" in roles and "y" in roles
    # EGMS tables carry both: easting/northing in EPSG:3035 are exact, lon/lat rounded to 1e-6 deg.
    prefer_xy = has_xy and (egms_xy or options.crs is not None or "x" in given)
    if has_lonlat and not prefer_xy:
        roles.pop("x", None), roles.pop("y", None)
    elif has_xy:
        roles.pop("lon", None), roles.pop("lat", None)
    else:
        raise InputError(
            source.path,
            "no recognisable coordinate columns (longitude/latitude or "
            f"easting/northing); name them with --lon/--lat or --x/--y (columns: {_preview(names)})",
        )
    if "velocity" not in roles:
        raise InputError(
            source.path,
            "no recognisable velocity column (velocity, vel, mean_velocity, ...); "
            f"name it with --velocity (columns: {_preview(names)})",
        )
    if options.min_coherence is not None and "coherence" not in roles:
        raise InputError(
            source.path,
            f"--min-coherence needs a coherence column; none found (recognised: {', '.join(ROLE_NAMES['coherence'])};"
            f" columns: {_preview(names)})",
        )
    _refuse_duplicates(source, roles, given)
    return roles


def _refuse_duplicates(source, roles, given):
    """A column the read would use that the header names twice is ambiguous: pyarrow silently takes one."""
    seen = {}
    for name in source.names:
        key = name.strip().lower()
        seen[key] = seen.get(key, 0) + 1
    for role, column in roles.items():
        if seen[column.strip().lower()] > 1:
            chosen = given.get(role) is not None
            why = "; naming it with an option cannot choose between them" if chosen else ""
            raise InputError(
                source.path,
                f"the header has {seen[column.strip().lower()]} columns named {column!r} ({role}){why}: "
                "rename or remove all but one",
            )


def _velocity_unit(source, roles, options):
    """The table's :class:`~defoscan.io.units.VelocityUnit`: ``--units``, else EGMS's mm/yr, else the column's name."""
    declared = "mm/yr" if source.egms is not None else UNITS_BY_NAME.get(roles["velocity"].strip().lower())
    return velocity_unit(source.path, options.units, declared)


def _projected_crs(source, options):
    if options.crs:
        try:
            crs = CRS.from_user_input(options.crs)
        except Exception:
            raise InputError(source.path, f"unknown CRS {options.crs!r}") from None
    elif source.egms is not None or looks_like_egms_table(source.names):
        crs = CRS.from_epsg(3035)
    else:
        raise InputError(source.path, "easting/northing columns need their CRS: pass --crs (for example EPSG:27700)")
    if not crs.is_projected:
        raise InputError(source.path, f"--crs {options.crs} is not a projected CRS; for degrees use --lon/--lat")
    return crs


def _batches(source, columns):
    """Yield pyarrow RecordBatches holding only ``columns``, as float64 (float32 for time series)."""
    if source.kind == "parquet":
        parquet = pq.ParquetFile(source.path)
        _check_numeric(source.path, parquet.schema_arrow, columns)
        yield from parquet.iter_batches(columns=columns, batch_size=1 << 20)
        return
    # pyarrow parses no decimal comma: such columns are read as text and converted batch by batch.
    text = source.decimal == ","
    kind = pa.string() if text else pa.float64()
    convert = pacsv.ConvertOptions(
        include_columns=columns, column_types={c: kind for c in columns}, strings_can_be_null=True
    )
    parse = pacsv.ParseOptions(delimiter=source.delimiter)
    # The names we recognised (spaces stripped) replace the header, so " lat" in "lon, lat" is found as "lat".
    read = pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=True, column_names=list(source.names), skip_rows=1)
    stream = _open_member(source.path, source.member) if source.member else source.path
    try:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            yield _decimal_comma_to_float(batch) if text else batch
    except pa.ArrowInvalid as err:
        hint = _decimal_hint(source, err)
        raise InputError(source.path, f"cannot parse the table: {_first_sentence(err)}{hint}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise InputError(source.path, f"corrupt or truncated file ({_first_sentence(err)})") from None
    finally:
        if not isinstance(stream, str):
            stream.close()


def _check_numeric(path, schema, columns):
    """Refuse a Parquet column the read needs as numbers that holds something else (text, dates)."""
    for name in columns:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            raise InputError(path, f"column {name!r} holds {kind} values, not numbers")


def _decimal_comma_to_float(batch):
    columns = [pc.cast(pc.replace_substring(column, ",", "."), pa.float64()) for column in batch.columns]
    return pa.record_batch(columns, names=batch.schema.names)


def _decimal_hint(source, err):
    if source.decimal == "." and re.search(r"'[-+]?\d+,\d", str(err)):
        return " (decimal commas? pass --decimal ,)"
    return ""


def _as_float(batch, name):
    return batch.column(name).to_numpy(zero_copy_only=False)


def _join(chunks, keep=None):
    """Concatenate (the rows where ``keep``), letting go of the chunks and the Arrow buffers behind them."""
    joined = np.concatenate(chunks)
    chunks.clear()
    return joined if keep is None else joined[keep]


def _median_point(lon_chunks, lat_chunks, keep):
    """``[median longitude], [median latitude]`` of the rows kept, for :func:`working_crs`.

    The same values as ``working_crs`` takes from whole arrays (the kept rows are finite, so ``np.median`` equals
    its ``np.nanmedian``), found in one scratch array, partitioned in place, instead of two joined copies each
    copied again by the median.
    """
    scratch = np.empty(sum(chunk.size for chunk in lon_chunks))
    medians = []
    for chunks in (lon_chunks, lat_chunks):
        values = np.concatenate(chunks, out=scratch)
        values = values if keep is None else values[keep]
        if chunks is lon_chunks:  # across the antimeridian, the median of continuous longitudes (a copy then)
            values = unwrap_longitudes(values)
        medians.append([np.median(values, overwrite_input=True)])
    return medians


class _BatchProjector:
    """Projects lon/lat batches to the working CRS in worker threads while the next batches are parsed.

    Projection (PROJ, which releases the GIL) costs several times the CSV parsing, so it runs alongside it. The
    working CRS depends on the median of *all* points, unknown until the end: the batches are projected to the
    CRS the first batch points to; when the whole file points elsewhere (:meth:`projected_to` says no), the
    caller projects again. Each point is projected on its own, so batch by batch
    gives the same coordinates as all at once.
    """

    def __init__(self, egms):
        self._egms = egms
        self._guess = None
        self._futures = []
        self._pool = None

    def submit(self, lon, lat):
        if self._guess is None:
            finite = np.isfinite(lon) & np.isfinite(lat)
            if not finite.any():
                return self._futures.append(None)
            self._guess = working_crs(lon[finite], lat[finite], egms=self._egms)
            # One Transformer serves all threads: pyproj gives each thread its own PROJ object.
            self._transformer = Transformer.from_crs(WGS84, self._guess, always_xy=True)
            self._pool = ThreadPoolExecutor(max_workers=usable_cores(), thread_name_prefix="defoscan-project")
        self._futures.append(self._pool.submit(self._transformer.transform, lon, lat))

    def projected_to(self, target):
        """Whether every batch went to ``target``."""
        return self._guess is not None and None not in self._futures and _same_crs(self._guess, target)

    def result(self, keep=None):
        """Projected ``x, y`` of all rows (those where ``keep``), in order."""
        xs, ys = [], []
        for future in self._futures:
            xs.append(future.result()[0]), ys.append(future.result()[1])
        self._futures.clear()
        return _join(xs, keep), _join(ys, keep)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _same_crs(a, b):
    return a is b or a == b


def _project(a, b, source_crs, target_crs):
    transformer = Transformer.from_crs(source_crs, target_crs, always_xy=True)
    return transformer.transform(a, b)


def _zip_members(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(path, f"corrupt zip archive ({err})") from None
    csvs = [n for n in names if n.lower().endswith((".csv", ".tsv", ".txt"))]
    xmls = [n for n in names if n.lower().endswith(".xml")]
    if len(csvs) != 1:
        raise InputError(path, f"expected one CSV in the zip archive, found {len(csvs)}: {_preview(names)}")
    return csvs[0], (xmls[0] if xmls else None)


def _egms_from_xml(path, member):
    try:
        with zipfile.ZipFile(path) as archive:
            fields = read_egms_xml(archive.read(member))
    except Exception as err:  # a broken sidecar must not hide a good CSV, but must not pass silently either
        raise InputError(path, f"unreadable XML metadata {member!r} ({err})") from None
    if "track" in fields:
        if not fields["track"].isdigit():
            raise InputError(path, f"XML metadata {member!r}: track {fields['track']!r} is not a track number")
        return {"level": fields.get("product_level", ""), "track": f"T{int(fields['track']):03d}"}
    return {"level": fields.get("product_level", "")} if "product_level" in fields else {}


def _open_member(path, member):
    archive = zipfile.ZipFile(path)
    handle = archive.open(member)
    return _ClosingMember(handle, archive)


class _ClosingMember(io.BufferedReader):
    """A zip member that closes its archive with it."""

    def __init__(self, handle, archive):
        super().__init__(handle, buffer_size=1 << 20)
        self._archive = archive

    def close(self):
        super().close()
        self._archive.close()


def _first_lines(path, member, count=SNIFF_LINES):
    """The header and up to ``count - 1`` data lines, decoded (the header's BOM dropped)."""
    try:
        if member is not None:
            with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
                raw = _read_lines(handle, count)
        else:
            with (gzip.open if path.lower().endswith(".gz") else open)(path, "rb") as handle:
                raw = _read_lines(handle, count)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(path, f"corrupt or unreadable file ({err})") from None
    if not raw:
        return []
    try:
        header = raw[0].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(path, "not a text table (cannot decode its first line as UTF-8)") from None
    return [header, *(line.decode("utf-8", errors="replace") for line in raw[1:])]


def _read_lines(handle, count):
    lines = []
    while len(lines) < count:
        line = handle.readline(1 << 20)
        if not line:
            break
        lines.append(line)
    return lines


def _preview(names, limit=12):
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _first_sentence(err):
    return str(err).strip().splitlines()[0][:200]
