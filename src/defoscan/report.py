"""``report.html``: a self-contained page (images inlined, no scripts from the network) summarising a run."""

import base64
import html
import os

from defoscan.outputs import atomic_path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f2f2f2; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } .note { color: #666; font-size: 0.9em; }
"""


def write_report(path, record, frame, overview_png):
    """Write the HTML report of a run.

    Parameters
    ----------
    path : str
    record : dict
        The run record (``run.json``).
    frame : geopandas.GeoDataFrame
        Detections, with ``id``, ``score``, ``area_km2``, ``n_points``, ``mean_velocity``, ``peak_velocity``,
        ``sign``, ``kind``, ``track``.
    overview_png : str
        Path of the overview figure, inlined as base64.
    """
    with open(overview_png, "rb") as handle:
        image = base64.b64encode(handle.read()).decode("ascii")
    grid = record["grid"]
    area_km2 = grid["width"] * grid["height"] * grid["cell_size_m"] ** 2 / 1e6
    summary_rows = [
        ("Inputs", ", ".join(i["path"].rsplit("/", 1)[-1] for i in record["inputs"])),
        ("Points", "gridded raster input" if record["points"] is None else f"{record['points']:,}"),
        ("Grid", f"{grid['width']} x {grid['height']} cells of {grid['cell_size_m']:g} m in {grid['crs']}"),
        ("Area covered by the grid", f"{area_km2:,.1f} km²"),
        ("Coverage (cells with data)", ", ".join(f"{t['track']}: {t['coverage']:.1%}" for t in record["tracks"])),
        ("Detector", _detector_label(record["parameters"])),
        (
            "Detections",
            f"{record['detections']['count']} ({record['detections']['by_sign']['subsidence']} "
            f"subsidence, {record['detections']['by_sign']['uplift']} uplift)",
        ),
        ("Run time", f"{record['timings']['total_s']:.1f} s"),
    ]
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary_rows)
    centroids = frame.to_crs(4326).geometry.representative_point() if len(frame) else []
    body = "".join(_detection_row(row, point) for (_, row), point in zip(frame.iterrows(), centroids, strict=True))
    table = (
        "<table><thead><tr><th>#</th><th>score</th><th>type</th><th>sign</th><th>track</th>"
        "<th>area (km²)</th><th>points</th><th>mean velocity (mm/yr)</th><th>peak velocity (mm/yr)</th>"
        f"<th>lon, lat</th></tr></thead><tbody>{body}</tbody></table>"
        if len(frame)
        else "<p>No deformation detected.</p>"
    )
    versions = ", ".join(f"{k} {v}" for k, v in record["software"].items())
    if record["parameters"]["detector"] == "cnn":
        from defoscan.scan import localise_mode

        model_input = (record["parameters"].get("model") or {}).get("input") or {}
        how = {
            "product": "the network's per-cell output times its window score, blended over overlapping windows",
            "pixel": "the network's per-cell output, blended over overlapping windows",
        }.get(localise_mode(model_input), "the network's score of each window, blended over overlapping windows")
        scores = (
            "A score is the highest probability of deformation in the area, from a network trained on synthetic "
            f"maps ({how}); it ranks detections, and is calibrated on synthetic data only. An area is detected "
            f"where the probability reaches {record['parameters']['probability_threshold']:.2f} and outlined "
            f"where it reaches {_low_threshold(record['parameters']):.2f}."
        )
    else:
        scores = "Scores rank detections; they are not calibrated probabilities."
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>defoscan report</title><style>{_STYLE}</style></head>
<body>
<h1>Ground deformation report</h1>
<table>{summary}</table>
<h2>Overview</h2>
<img alt="Gridded velocity with detections outlined and numbered" src="data:image/png;base64,{image}">
<h2>Detections</h2>
{table}
<p class="note">Velocities are along the satellite line of sight; negative = motion away from the satellite
(subsidence where motion is mostly vertical). {html.escape(scores)}</p>
<p class="note">Software: {html.escape(versions)}</p>
</body></html>
"""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(document)


def _detection_row(row, point):
    cells = [
        row["id"],
        f"{row['score']:.2f}",
        row["kind"],
        row["sign"],
        row["track"],
        f"{row['area_km2']:.3f}",
        row["n_points"],
        f"{row['mean_velocity']:.1f}",
        f"{row['peak_velocity']:.1f}",
        f"{point.x:.5f}, {point.y:.5f}",
    ]
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _low_threshold(parameters):
    """The cut-off areas are outlined at (records before hysteresis: the cut-off itself)."""
    low = parameters.get("low_probability_threshold")
    return parameters["probability_threshold"] if low is None else low


def _detector_label(parameters):
    """``cnn (model defoscan-compact, sha256 1234abcd...)`` or ``threshold``."""
    model = parameters.get("model") or {}
    if parameters["detector"] != "cnn" or not model:
        return parameters["detector"]
    name = model.get("name") or os.path.basename(str(model.get("path", "")))
    return f"cnn (model {name}, weights sha256 {str(model.get('weights_sha256', ''))[:12]})"
