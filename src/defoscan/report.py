"""``report.html``: the page a person reads, built from a finished run directory (docs/REPORT.md).

The page is self-contained (images inlined as base64, style and script inline, nothing fetched) and is built only
from the run's files, so ``detect`` and ``defoscan report RUN_DIR`` make the same page. It holds a summary, the
overview map, one card per detection for the ``top`` highest scores (four small images read from windows of the
rasters: the cost does not grow with the map), a sortable table of every detection, and the parameters, timings
and software versions of ``run.json``.
"""

import base64
import html
import json
import os

import geopandas as gpd
import numpy as np
import rasterio

from defoscan.errors import InputError
from defoscan.figures import MAX_LABELS
from defoscan.outputs import atomic_path, check_output_file
from defoscan.report_assets import SCRIPT, STYLE
from defoscan.report_images import card_panels, colorbar_stops, unreadable_raster

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk and its CRC: the last 8 bytes of every PNG file
DEFAULT_TOP = 50  # cards; the other detections are in the table only, so a country's page stays quick to open
RASTERS = ("velocity", "velocity_filled", "probability")
DETECTION_COLUMNS = ("id", "score", "area_km2", "n_points", "mean_velocity", "peak_velocity", "sign")
RECORD_KEYS = ("software", "inputs", "parameters", "grid", "tracks", "detections", "timings")
ROWS_PER_PAGE = 100  # table rows drawn at once: a page of 20,000 rows in the DOM takes seconds to open and sort
TABLE_COLUMNS = (  # heading, key of the row, digits shown ("" text, "int" whole numbers with separators)
    ("#", "id", "int"),
    ("score", "score", "3"),
    ("type", "kind", ""),
    ("sign", "sign", ""),
    ("track", "track", ""),
    ("area (km²)", "area_km2", "3"),
    ("points", "n_points", "int"),
    ("mean against surroundings (mm/yr)", "mean_relative", "1"),
    ("peak against surroundings (mm/yr)", "peak_relative", "1"),
    ("mean as mapped (mm/yr)", "mean_velocity", "1"),
    ("peak as mapped (mm/yr)", "peak_velocity", "1"),
    ("longitude", "lon", "5"),
    ("latitude", "lat", "5"),
)


def write_report_from_run(run_dir, *, top=DEFAULT_TOP, path=None, rows_per_page=ROWS_PER_PAGE):
    """Write ``report.html`` of a finished run from the run's files, atomically.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A directory written by ``detect``: ``run.json``, ``detections.gpkg`` (or ``detections.geojson``),
        ``velocity.tif``, ``velocity_filled.tif``, ``probability.tif`` and ``overview.png``.
    top : int
        Detections given a card, highest scores first; the others are in the table only.
    path : str, optional
        Where to write the page; ``RUN_DIR/report.html`` by default.
    rows_per_page : int
        Table rows shown at once (the page's buttons show the next, or all).

    Returns
    -------
    str
        The page's path.

    Raises
    ------
    InputError
        When ``run_dir`` is not a finished run (missing or unreadable files), or ``top`` is negative.
    """
    run_dir = os.fspath(run_dir)
    if int(top) < 0:
        raise InputError(None, f"--top must be 0 or more, got {top}")
    record, frame = load_run(run_dir)
    path = os.path.join(run_dir, "report.html") if path is None else os.fspath(path)
    check_output_file(path, option=None)
    document = render_report(run_dir, record, frame, top=int(top), rows_per_page=rows_per_page)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(document)
    return path


def load_run(run_dir):
    """The run record and detections (working CRS, highest score first) of a run directory.

    Raises
    ------
    InputError
        Naming the missing or unreadable file.
    """
    if not os.path.isdir(run_dir):
        raise InputError(run_dir, "no such run directory" if not os.path.exists(run_dir) else "not a directory")
    record_path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(record_path):
        if any(os.path.exists(os.path.join(run_dir, f"{r}.tif")) for r in RASTERS):
            # run.json is moved in last where the files are moved one by one (defoscan.outputs.switch_in)
            raise InputError(run_dir, "an unfinished run (no run.json: stopped while moving its files in); rerun it")
        raise InputError(run_dir, "not a defoscan run directory (no run.json)")
    try:
        with open(record_path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(record_path, f"cannot read the run record ({error})") from None
    missing = [key for key in RECORD_KEYS if not isinstance(record, dict) or key not in record]
    if missing:
        raise InputError(record_path, f"not a defoscan run record (no {', '.join(missing)})")
    for name in (*(f"{r}.tif" for r in RASTERS), "overview.png"):
        if not os.path.isfile(os.path.join(run_dir, name)):
            raise InputError(os.path.join(run_dir, name), "missing: not a finished defoscan run")
    frame = _read_detections(run_dir, record["grid"]["crs"])
    return record, frame.sort_values(["score", "id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def render_report(run_dir, record, frame, *, top=DEFAULT_TOP, rows_per_page=ROWS_PER_PAGE):
    """The page, as text.

    Parameters
    ----------
    run_dir : str
        The rasters and ``overview.png`` are read from it.
    record : dict
        The run record (``run.json``).
    frame : geopandas.GeoDataFrame
        Detections in the working CRS, in card order (highest score first).
    top : int
    rows_per_page : int

    Returns
    -------
    str
    """
    rows = _table_rows(frame)
    overview = base64.b64encode(_read_png(os.path.join(run_dir, "overview.png"))).decode("ascii")
    cards = _cards(run_dir, record, frame.head(top), rows[:top]) if top and len(frame) else ""
    shown = min(top, len(frame))
    if not len(frame) and record.get("scan_incomplete"):
        cards_heading = "<p>No detection, in what the detector could scan (see the summary).</p>"
    elif not len(frame):
        cards_heading = "<p>No deformation detected: no detection reached the detector's cut-offs.</p>"
    elif shown < len(frame):
        cards_heading = (
            f"<p>The {shown} highest-scoring of {len(frame)} detections; the other {len(frame) - shown} are in the "
            '<a href="#table">table</a>.</p>'
        )
    else:
        cards_heading = f"<p>All {len(frame)} detections, highest score first.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>defoscan report: {len(frame)} detection(s)</title><style>{STYLE}</style></head>
<body>
<h1>Ground deformation report</h1>
<p class="note">{html.escape(", ".join(os.path.basename(i["path"]) for i in record["inputs"]))}</p>
<h2 id="summary">Summary</h2>
<table class="summary">{_summary(record)}</table>
{_not_scanned_note(record)}
{_warnings(record)}
{_counts(frame)}
<h2 id="overview">Overview</h2>
<figure><img class="overview" alt="Gridded velocity with the detections outlined and numbered"
src="data:image/png;base64,{overview}">
<figcaption class="note">Line-of-sight velocity of the gridded map (mm/yr; grey: no data), every detection
outlined, the {MAX_LABELS} highest-scoring numbered as in the cards and the table.</figcaption></figure>
{_truth_section(run_dir)}
<h2 id="detections">Detections</h2>
{cards_heading}
{cards}
<h2 id="table">All detections</h2>
{_table(rows, shown, rows_per_page)}
<p class="note">Velocities are along the satellite line of sight; negative = motion away from the satellite
(subsidence where motion is mostly vertical), shown red; positive (uplift) blue. {html.escape(_scores_note(record))}
</p>
<h2 id="parameters">Parameters</h2>
{_key_values(_flatten(record["parameters"]))}
<h2 id="timings">Timings</h2>
{_key_values({k: f"{v:.2f} s" for k, v in record["timings"].items()})}
<h2 id="software">Software</h2>
{_key_values(record["software"])}
<script>{SCRIPT}</script>
</body></html>
"""


def _read_png(path):
    """The bytes of a whole PNG file (its signature first, its IEND chunk last): a cut one would show broken."""
    with open(path, "rb") as handle:
        data = handle.read()
    if not (data.startswith(PNG_SIGNATURE) and data.endswith(PNG_END)):
        raise InputError(path, "not a whole PNG image, truncated or damaged; run detect again to rewrite it")
    return data


def _truth_section(run_dir):
    """The Truth section of a run scored against known outlines (``scores.json``, as the demo writes); else ""."""
    path = os.path.join(run_dir, "scores.json")
    if not os.path.isfile(path):
        return ""
    try:
        with open(path, encoding="utf-8") as handle:
            scores = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read the scores ({error})") from None
    rows = "".join(
        f"<tr><td>{t['id']}</td><td>{html.escape(str(t['kind']))}</td><td>{t['peak_velocity']:.1f}</td>"
        f"<td>{'found' if t['found'] else 'missed'}</td>"
        f"<td>{html.escape(', '.join(str(i) for i in t['detections']) or '-')}</td></tr>"
        for t in scores.get("per_truth", [])
    )
    totals = {
        "signals": scores["truths"],
        "found": scores["found"],
        "detections": scores["detections"],
        "false alarms": scores["false_alarms"],
        "recall": _fraction(scores["recall"]),
        "precision": _fraction(scores["precision"]),
        "F1": _fraction(scores["f1"]),
    }
    return f"""<h2 id="truth">Truth</h2>
<p class="note">The map's true signals (truth.geojson; dashed in the overview) and the detections scored against
them (scores.json): a signal is found when a detection overlaps it most.</p>
{_key_values(totals)}
<table class="truth"><thead><tr><th>signal</th><th>kind</th><th>peak mm/yr</th><th>found</th><th>detections</th>
</tr></thead><tbody>{rows}</tbody></table>"""


def _fraction(value):
    return "-" if value is None else f"{value:.2f}"


def _read_detections(run_dir, crs):
    """Detections of the run in the working CRS: the GeoPackage, else the GeoJSON reprojected."""
    for name in ("detections.gpkg", "detections.geojson"):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            try:
                # The GeoPackage also holds its QGIS style (layer_styles): name the layer.
                frame = gpd.read_file(path, layer="detections" if name.endswith(".gpkg") else None)
            except Exception as error:  # pyogrio raises several types for unreadable files
                raise InputError(path, f"cannot read the detections ({error})") from None
            if frame.crs is None:
                frame = frame.set_crs(4326)
            missing = set(DETECTION_COLUMNS) - set(frame.columns)
            if len(frame) and missing:
                raise InputError(path, f"not defoscan detections (no {', '.join(sorted(missing))})")
            relative = ("mean_relative", "peak_relative", "background_velocity")  # not in runs before issue 16
            for column, default in (("kind", "deformation"), ("track", "all"), *((c, np.nan) for c in relative)):
                if column not in frame.columns:
                    frame[column] = default
            return frame.to_crs(crs)
    raise InputError(os.path.join(run_dir, "detections.gpkg"), "missing: not a finished defoscan run")


def _warnings(record):
    """The run's warnings (run.json ``warnings``), each as said on stderr; nothing when there were none."""
    messages = record.get("warnings") or []
    if not messages:
        return ""
    items = "".join(f"<li>{html.escape(str(m))}</li>" for m in messages)
    return f'<h3 id="warnings">Warnings ({len(messages)})</h3>\n<ul class="warnings">{items}</ul>'


def _summary(record):
    grid, tracks, parameters = record["grid"], record["tracks"], record["parameters"]
    cell_km2 = grid["cell_size_m"] ** 2 / 1e6
    with_data = sum(t["cells_with_data"] for t in tracks) * cell_km2
    detections = record["detections"]
    rows = [
        ("Area scanned", f"{grid['width'] * grid['height'] * cell_km2:,.1f} km² (extent of the grid)"),
        ("Area with data", f"{with_data:,.1f} km²" + (" (all tracks)" if len(tracks) > 1 else "")),
        ("Coverage (cells with data)", ", ".join(f"{t['track']}: {t['coverage']:.1%}" for t in tracks)),
        ("Points", "gridded raster input" if record["points"] is None else f"{record['points']:,}"),
        ("Grid", f"{grid['width']:,} x {grid['height']:,} cells of {grid['cell_size_m']:g} m in {grid['crs']}"),
        ("Detector", _detector_label(parameters)),
        *_scanned_row(tracks),
        (
            "Detections",
            f"{detections['count']} ({detections['by_sign']['subsidence']} subsidence, "
            f"{detections['by_sign']['uplift']} uplift)",
        ),
        ("Run time", f"{record['timings'].get('total_s', float('nan')):.1f} s"),
    ]
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)


def _scanned_row(tracks):
    """The share of the cells with data the detector's scan reached, per track (run.json ``tracks[].scanned``;
    detectors without a scan, and runs from before issue 24, have none)."""
    shares = [(t["track"], t["scanned"]) for t in tracks if t.get("scanned")]
    if not shares:
        return []
    text = ", ".join(
        (f"{name}: " if len(tracks) > 1 else "")
        + f"{s['share']:.0%} ({s['cells_scanned']:,} of {s['cells_with_data']:,})"
        for name, s in shares
    )
    return [("Cells with data scanned", text)]


def _not_scanned_note(record):
    """A paragraph saying the detector could not scan all of the map (``scan_incomplete``), when it could not; else
    ""."""
    tracks = record.get("scan_incomplete") or []
    if not tracks:
        return ""
    which = "the map" if len(record["tracks"]) == 1 else f"track(s) {', '.join(tracks)}"
    return (
        f'<p class="not-scanned"><strong>Not a clean result:</strong> the detector could not scan all of {which} '
        "(see the warnings): where it did not, no detection does not mean no deformation.</p>"
    )


def _counts(frame):
    """Detections by type (rows) and sign (columns)."""
    if not len(frame):
        return ""
    signs = ("subsidence", "uplift")
    body = ""
    for kind in sorted(frame["kind"].unique()):
        of_kind = frame[frame["kind"] == kind]
        cells = "".join(f'<td class="num">{int((of_kind["sign"] == s).sum())}</td>' for s in signs)
        body += f'<tr><th>{html.escape(str(kind))}</th>{cells}<td class="num">{len(of_kind)}</td></tr>'
    return (
        '<table class="counts"><thead><tr><th>type</th><th class="legend-subsidence">subsidence</th>'
        f'<th class="legend-uplift">uplift</th><th>all</th></tr></thead><tbody>{body}</tbody></table>'
    )


def _table_rows(frame):
    """Plain dicts of the detections, with the longitude and latitude of a point inside each."""
    if not len(frame):
        return []
    inside = frame.geometry.representative_point()
    geographic = inside.to_crs(4326)
    rows = []
    for record, point, lonlat in zip(
        frame.drop(columns="geometry").to_dict("records"), inside, geographic, strict=True
    ):
        rows.append({**record, "x": point.x, "y": point.y, "lon": lonlat.x, "lat": lonlat.y})
    return rows


def _table(rows, carded, rows_per_page):
    """The table of every detection: its data as JSON, drawn a page at a time and sorted by the page's script.

    The rows travel as one JSON array rather than as table rows, so a country's tens of thousands of detections
    cost the browser a parse, not a layout; the numbers of the first ``carded`` rows link to their cards.
    """
    if not rows:
        return "<p>No detections.</p>"
    data = {
        "rows": [[_json_value(row[key]) for _, key, _ in TABLE_COLUMNS] for row in rows],
        "cards": [int(row["id"]) for row in rows[:carded]],
    }
    # "</" would end the script element early; "<\/" is the same JSON string.
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    head = "".join(
        f'<th data-type="{"text" if digits == "" else "number"}" data-digits="{digits}">{html.escape(name)}</th>'
        for name, _, digits in TABLE_COLUMNS
    )
    return (
        '<p class="note">Click a column heading to sort by it, again to reverse; a linked number leads to its '
        "card.</p>"
        "<noscript><p>The table needs JavaScript; every detection is also in detections.geojson.</p></noscript>"
        f'<div class="scroll"><table class="sortable detections" data-source="detections-data" '
        f'data-pager="detections-pager" data-rows-per-page="{int(rows_per_page)}"><thead><tr>{head}</tr></thead>'
        "<tbody></tbody></table></div>"
        '<div class="pager" id="detections-pager"><button type="button" class="previous">previous</button> '
        '<span class="range"></span> <button type="button" class="next">next</button> '
        '<button type="button" class="all">show all</button></div>'
        f'<script type="application/json" id="detections-data">{payload}</script>'
    )


def _json_value(value):
    """A table cell for JSON: numbers rounded to what the table shows and sorts by, text as is, NaN as null."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return round(value, 7) if np.isfinite(value) else None


def _cards(run_dir, record, frame, rows):
    """One card per detection: facts, and the four panels of :func:`defoscan.report_images.card_panels`."""
    recipe = (record["parameters"].get("model") or {}).get("input")
    detector = record["parameters"].get("detector", "cnn")
    crs = record["grid"]["crs"]
    sources = {}
    try:
        for name in RASTERS:
            path = os.path.join(run_dir, f"{name}.tif")
            try:
                sources[name] = rasterio.open(path)
            except rasterio.errors.RasterioError as error:
                raise unreadable_raster(path, error) from None
        out = []
        for geometry, row in zip(frame.geometry, rows, strict=True):
            bands = {name: _band(src, f"{name} {row['track']}") for name, src in sources.items()}
            panels = card_panels(sources, bands, geometry, row["peak_velocity"], recipe, detector=detector)
            out.append(_card(row, panels, crs))
        return "\n".join(out)
    finally:
        for src in sources.values():
            src.close()


def _band(src, description):
    """Band index (1-based) of the band named ``description``."""
    for index, name in enumerate(src.descriptions, start=1):
        if name == description:
            return index
    raise InputError(src.name, f"no band {description!r}")


def _card(row, panels, crs):
    facts = [
        ("location", f"{_degrees(row['lon'], 'E', 'W')}, {_degrees(row['lat'], 'N', 'S')}"),
        ("working CRS", f"{row['x']:,.0f} E, {row['y']:,.0f} N (m, {crs})"),
        ("area", f"{row['area_km2']:.3f} km²"),
        ("points", f"{row['n_points']:,}"),
        # docs/SCAN.md, "What mean and peak are measured against"
        ("mean / peak against surroundings", f"{row['mean_relative']:.1f} / {row['peak_relative']:.1f} mm/yr"),
        ("mean / peak as mapped", f"{row['mean_velocity']:.1f} / {row['peak_velocity']:.1f} mm/yr"),
        ("track", row["track"]),
    ]
    facts_html = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts)
    figures = "".join(_panel(p) for p in panels)
    sign_class = "legend-subsidence" if row["sign"] == "subsidence" else "legend-uplift"
    return (
        f'<article class="card" id="detection-{row["id"]}"><h3>#{row["id"]} '
        f'<span class="{sign_class}">{html.escape(row["sign"])}</span> · {html.escape(str(row["kind"]))}'
        f'<span class="score">score {row["score"]:.3f}</span></h3>'
        f'<dl class="facts">{facts_html}</dl><div class="panels">{figures}</div></article>'
    )


def _panel(panel):
    image = base64.b64encode(panel.png).decode("ascii")
    ticks = "".join(f"<span>{html.escape(label)}</span>" for _, label in panel.ticks)
    return (
        f'<figure class="panel"><img alt="{html.escape(panel.title)}" src="data:image/png;base64,{image}">'
        f"<figcaption>{html.escape(panel.title)}</figcaption>"
        f'<div class="bar" style="background: linear-gradient(to right, {colorbar_stops(panel.cmap)})"></div>'
        f'<div class="ticks">{ticks}</div><div class="unit">{html.escape(panel.unit)}</div></figure>'
    )


def _degrees(value, positive, negative):
    return f"{abs(value):.5f}° {positive if value >= 0 else negative}"


def _flatten(mapping, prefix=""):
    """Nested parameters as ``{"model.input.mode": "single", ...}``, values as JSON text."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def _key_values(mapping):
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in sorted(mapping.items())
    )
    return f'<table class="key-values">{rows}</table>'


def _scores_note(record):
    """What a score means for the run's detector."""
    parameters = record["parameters"]
    if parameters.get("detector") != "cnn":
        return "Scores rank detections; they are not calibrated probabilities."
    from defoscan.scan import localise_mode

    model_input = (parameters.get("model") or {}).get("input") or {}
    how = {
        "product": "the network's per-cell output times its window score, blended over overlapping windows",
        "pixel": "the network's per-cell output, blended over overlapping windows",
    }.get(localise_mode(model_input), "the network's score of each window, blended over overlapping windows")
    return (
        "A score is the highest probability of deformation in the area, from a network trained on synthetic "
        f"maps ({how}); it ranks detections, and is calibrated on synthetic data only. An area is detected "
        f"where the probability reaches {parameters['probability_threshold']:.2f} and outlined "
        f"where it reaches {_low_threshold(parameters):.2f}."
    )


def _low_threshold(parameters):
    """The cut-off areas are outlined at (records before hysteresis: the cut-off itself)."""
    low = parameters.get("low_probability_threshold")
    return parameters["probability_threshold"] if low is None else low


def _detector_label(parameters):
    """``cnn (model defoscan-compact, sha256 1234abcd...)`` or ``threshold``."""
    model = parameters.get("model") or {}
    if parameters.get("detector") != "cnn" or not model:
        return parameters.get("detector", "")
    name = model.get("name") or os.path.basename(str(model.get("path", "")))
    return f"cnn (model {name}, weights sha256 {str(model.get('weights_sha256', ''))[:12]})"
