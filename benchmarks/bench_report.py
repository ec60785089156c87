"""report.html with a country's number of detections: the table as JSON drawn a page at a time, against HTML rows.

Input: ``defoscan detect --detector threshold`` on the Kirishima map (76 detections; ../shared), run once and cached
under ``--out``; then a copy of that run directory whose ``detections.gpkg``, ``detections.geojson`` and
``run.json`` hold its detections repeated ``COPIES`` times (270: 20,520 detections; quick: 27, 2,052), ids
renumbered, scores, shapes and everything else kept, written by the project's own writers.

Two pages of that run, each with the 50 cards of :data:`defoscan.report.DEFAULT_TOP`:

- **paged** (what ``detect`` writes): :func:`defoscan.report.write_report_from_run`, the table's rows as one JSON
  array drawn ``ROWS_PER_PAGE`` (100) rows at a time by the page's script, which sorts the array and redraws.
- **baseline, HTML rows**: the same page with the table written out as static ``<tr>`` rows, one per detection
  (same columns, same text, the numbers in ``data-value`` attributes as the report wrote them before the JSON
  table), sorted by a script that reads each row's key once, sorts as the paged script does (stable, same order)
  and moves the row elements. It is made from the paged page (the JSON array turned into rows, the pager and the
  JSON removed), so everything else on the two pages is byte for byte the same. Calling
  ``write_report_from_run(rows_per_page=len(detections))`` would not be this baseline: it still ships JSON and
  builds every row in the script at load.

Measured (median of ``repeats``, the sides interleaved, a fresh headless Chromium for every measurement; Debian's
``chromium`` driven by Playwright, never a downloaded browser):

- **build**: ``write_report_from_run`` on the run directory, in this process (paged page only: the baseline is
  derived from it);
- **size** of the page;
- **open**: from navigation start (a ``file:`` URL) to the ``load`` event and the next frame drawn after it, as
  the page's ``performance.now()`` sees it (the table is drawn by then: the paged script runs before ``load``);
- **sort**: click the "peak velocity" heading (in the page: ``performance.now()`` around ``click()``, a forced
  layout and the next frame), then check ``aria-sort`` and that the first row holds the lowest value;
- **memory**: the renderer's JS heap and DOM nodes after opening (Chrome DevTools Protocol
  ``Performance.getMetrics``, after a garbage collection) and the renderer process's peak resident memory
  (VmHWM; the DOM lives outside the JS heap).
"""

import json
import os
import re
import shutil
import statistics
import time

NAME = "report"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = os.environ.get("DEFOSCAN_REAL_DATA") or os.path.join(ROOT, "..", "shared", "data", "real")  # never bundled
KIRISHIMA = os.path.join(REAL, "01_kirishima_mintpy_alos2", "velocity.h5")
COPIES = {"full": 270, "quick": 27}  # x 76 detections: 20,520 and 2,052
INPUT_VERSION = 1  # bump when the generated run directory changes, so cached inputs are rebuilt
SORT_HEADING = "peak velocity"
SIDES = ("paged", "baseline")
LABELS = {"paged": "paged: JSON, 100 rows drawn", "baseline": "baseline: every row as HTML `<tr>`"}
TIMEOUT_MS = 300_000

# The baseline's script: rows keyed once (numbers from data-value, as the pre-JSON report wrote them), sorted like
# the paged script (stable, nulls last), the row elements moved in that order.
BASELINE_SCRIPT = """
(function () {
  "use strict";
  var table = document.querySelector("table.sortable.detections");
  var headers = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headers, function (header, column) {
    header.addEventListener("click", function () {
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      var numeric = header.getAttribute("data-type") === "number";
      Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var keyed = Array.prototype.map.call(body.rows, function (row, index) {
        var cell = row.cells[column], key;
        if (numeric) key = cell.hasAttribute("data-value") ? parseFloat(cell.getAttribute("data-value")) : null;
        else key = cell.textContent.toLowerCase();
        return { row: row, index: index, key: key };
      });
      keyed.sort(function (a, b) {
        if (a.key === null || b.key === null) {
          return a.key === b.key ? a.index - b.index : a.key === null ? 1 : -1;
        }
        var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
        return (ascending ? order : -order) || a.index - b.index;
      });
      var fragment = document.createDocumentFragment();
      keyed.forEach(function (item) { fragment.appendChild(item.row); });
      body.appendChild(fragment);
    });
  });
})();
"""

# Set before the page's own scripts run: the time of the first frame after ``load``.
DRAWN_SCRIPT = """
window.addEventListener("load", function () {
  requestAnimationFrame(function () { setTimeout(function () { window.__drawn = performance.now(); }, 0); });
});
"""

SORT_JS = """
async (label) => {
  const table = document.querySelector("table.detections");
  const header = Array.from(table.tHead.rows[0].cells).find(h => h.textContent.startsWith(label));
  const column = header.cellIndex;
  const start = performance.now();
  header.click();
  const handled = performance.now();
  void table.offsetHeight;  // style and layout of the redrawn rows
  const laidOut = performance.now();
  await new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const drawn = performance.now();
  const rows = table.tBodies[0].rows;
  const value = i => rows[i].cells[column].textContent;
  return {handler_ms: handled - start, layout_ms: laidOut - start, sort_ms: drawn - start,
          aria_sort: header.getAttribute("aria-sort"), rows: rows.length, first: value(0),
          last: value(rows.length - 1)};
}
"""


# --- inputs -----------------------------------------------------------------------------------------------------


def base_run(out_dir):
    """The Kirishima threshold run (76 detections), made once under ``out_dir``; returns its directory."""
    from defoscan.pipeline import detect

    path = os.path.join(out_dir, "report_kirishima_threshold")
    stamp = os.path.join(out_dir, "report_kirishima_threshold.json")
    params = {"input": KIRISHIMA, "bytes": os.path.getsize(KIRISHIMA), "detector": "threshold"}
    if _stamped(stamp, params) and os.path.isfile(os.path.join(path, "run.json")):
        return path
    started = time.perf_counter()
    detect([KIRISHIMA], path, detector="threshold")
    print(f"  detect on {os.path.relpath(KIRISHIMA, ROOT)}: {time.perf_counter() - started:.1f} s")
    with open(stamp, "w") as handle:
        json.dump(params, handle)
    return path


def repeated_run(base, out_dir, copies):
    """A copy of the run directory ``base`` with its detections repeated ``copies`` times; returns its directory."""
    import geopandas as gpd
    import pandas as pd

    from defoscan.outputs import write_geojson, write_geopackage, write_json

    path = os.path.join(out_dir, f"report_x{copies}")
    stamp = path + ".json"
    with open(os.path.join(base, "run.json")) as handle:
        record = json.load(handle)
    params = {"version": INPUT_VERSION, "copies": copies, "base": record["detections"]}
    if _stamped(stamp, params) and os.path.isfile(os.path.join(path, "run.json")):
        return path
    started = time.perf_counter()
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(base, path, ignore=shutil.ignore_patterns("report*.html"))
    frame = gpd.read_file(os.path.join(base, "detections.gpkg"))
    n = len(frame)
    frames = []
    for k in range(copies):
        copy = frame.copy()
        copy["id"] = frame["id"] + k * n  # ids 1..n of copy 0 stay as they were
        frames.append(copy)
    repeated = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frame.crs)
    write_geopackage(os.path.join(path, "detections.gpkg"), repeated)
    write_geojson(os.path.join(path, "detections.geojson"), repeated)
    record["detections"] = {
        "count": len(repeated),
        "by_sign": {s: int((repeated["sign"] == s).sum()) for s in ("subsidence", "uplift")},
    }
    write_json(os.path.join(path, "run.json"), record)
    with open(stamp, "w") as handle:
        json.dump(params, handle)
    print(f"  {len(repeated):,} detections written in {time.perf_counter() - started:.1f} s")
    return path


def _stamped(stamp, params):
    if not os.path.exists(stamp):
        return False
    with open(stamp) as handle:
        return json.load(handle) == params


# --- the baseline page ------------------------------------------------------------------------------------------

TABLE_RE = re.compile(
    r'<div class="scroll"><table class="sortable detections"[^>]*>(<thead>.*?</thead>)<tbody></tbody></table></div>'
    r'<div class="pager" id="detections-pager">.*?</div>'
    r'<script type="application/json" id="detections-data">(.*?)</script>',
    re.S,
)


def html_rows_page(paged):
    """The paged page's text with the table as static ``<tr>`` rows and the baseline's sort script."""
    import html

    match = TABLE_RE.search(paged)
    if match is None:
        raise RuntimeError("the report's table has changed: update bench_report.TABLE_RE")
    head = match.group(1)
    digits = re.findall(r'data-digits="([^"]*)"', head)
    data = json.loads(match.group(2).replace("<\\/", "</"))
    cards = set(data["cards"])
    body = []
    for row in data["rows"]:
        cells = []
        for column, (value, kind) in enumerate(zip(row, digits, strict=True)):
            text = html.escape(_cell_text(value, kind))
            if column == 0 and value in cards:
                text = f'<a href="#detection-{value}">{text}</a>'
            if kind == "":
                cells.append(f"<td>{text}</td>")
            elif value is None:
                cells.append(f'<td class="num">{text}</td>')
            else:
                cells.append(f'<td class="num" data-value="{float(value)!r}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = (
        f'<div class="scroll"><table class="sortable detections">{head}<tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table></div>"
    )
    page = paged[: match.start()] + table + paged[match.end() :]
    return page.replace("</body></html>", f"<script>{BASELINE_SCRIPT}</script>\n</body></html>")


def _cell_text(value, digits):
    """As the page's script shows a cell (``cellText`` in defoscan.report_assets)."""
    if value is None:
        return ""
    if digits == "":
        return str(value)
    if digits == "int":
        return f"{int(value):,}"
    return f"{value:.{int(digits)}f}"


# --- the browser ------------------------------------------------------------------------------------------------


def measure_in_browser(playwright, path):
    """Open ``path`` in a fresh headless Chromium, sort a column; the figures of that one run."""
    executable = shutil.which("chromium")
    if not executable:
        raise RuntimeError("chromium is not installed (apt-get install chromium; `make test` installs it)")
    browser = playwright.chromium.launch(executable_path=executable)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems = []
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else 0)
        page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
        page.add_init_script(DRAWN_SCRIPT)
        page.set_default_timeout(TIMEOUT_MS)
        started = time.perf_counter()
        page.goto("file://" + os.path.abspath(path), wait_until="load", timeout=TIMEOUT_MS)
        page.wait_for_function("window.__drawn !== undefined", timeout=TIMEOUT_MS)
        wall_open = time.perf_counter() - started
        opened = page.evaluate(
            "() => ({drawn_ms: window.__drawn, load_ms: performance.getEntriesByType('navigation')[0].loadEventEnd,"
            " rows: document.querySelectorAll('table.detections tbody tr').length})"
        )
        cdp = page.context.new_cdp_session(page)
        cdp.send("HeapProfiler.collectGarbage")
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        started = time.perf_counter()
        sort = page.evaluate(SORT_JS, SORT_HEADING)
        wall_sort = time.perf_counter() - started
        renderer_mib = _renderer_peak_mib()
        if problems:
            raise RuntimeError(f"{path}: " + "; ".join(problems))
        if sort["aria_sort"] != "ascending":
            raise RuntimeError(f"{path}: the sort did not happen (aria-sort {sort['aria_sort']!r})")
        return {
            "open_s": opened["drawn_ms"] / 1000,
            "load_s": opened["load_ms"] / 1000,
            "open_wall_s": wall_open,
            "rows_drawn": opened["rows"],
            "sort_s": sort["sort_ms"] / 1000,
            "sort_handler_s": sort["handler_ms"] / 1000,
            "sort_layout_s": sort["layout_ms"] / 1000,
            "sort_wall_s": wall_sort,
            "sorted_first": sort["first"],
            "sorted_last": sort["last"],
            "js_heap_mib": metrics.get("JSHeapUsedSize", float("nan")) / 2**20,
            "dom_nodes": int(metrics.get("Nodes", 0)),
            "renderer_peak_mib": renderer_mib,
        }
    finally:
        browser.close()


def _renderer_peak_mib():
    """Largest VmHWM of this process's Chromium renderers (one page, one browser: its renderer), or None."""
    try:
        import psutil
    except ImportError:
        return None
    peak = None
    for child in psutil.Process().children(recursive=True):
        try:
            if not any(arg == "--type=renderer" for arg in child.cmdline()):
                continue
            with open(f"/proc/{child.pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        peak = max(peak or 0.0, int(line.split()[1]) / 1024)
        except (psutil.Error, OSError):
            continue
    return peak


# --- the benchmark ----------------------------------------------------------------------------------------------


def run(ctx):
    """Make (or reuse) the run directory, build both pages, open and sort each in Chromium; print and return."""
    from playwright.sync_api import sync_playwright

    from defoscan.report import DEFAULT_TOP, ROWS_PER_PAGE, write_report_from_run

    copies = COPIES["quick" if ctx.quick else "full"]
    run_dir = repeated_run(base_run(ctx.out_dir), ctx.out_dir, copies)
    with open(os.path.join(run_dir, "run.json")) as handle:
        count = json.load(handle)["detections"]["count"]
    print(f"input: {run_dir} ({count:,} detections)")
    pages = {side: os.path.join(run_dir, f"report_{side}.html") for side in SIDES}

    build = []
    for i in range(ctx.repeats):
        started = time.perf_counter()
        write_report_from_run(run_dir, top=DEFAULT_TOP, path=pages["paged"], rows_per_page=ROWS_PER_PAGE)
        build.append(time.perf_counter() - started)
        print(f"  build {i + 1}/{ctx.repeats}: {build[-1]:.2f} s", flush=True)
    with open(pages["paged"], encoding="utf-8") as handle:
        paged = handle.read()
    started = time.perf_counter()
    baseline = html_rows_page(paged)
    derive_s = time.perf_counter() - started
    with open(pages["baseline"], "w", encoding="utf-8") as handle:
        handle.write(baseline)
    sizes = {side: os.path.getsize(p) for side, p in pages.items()}
    print(f"  sizes: paged {sizes['paged']:,} B, baseline {sizes['baseline']:,} B (derived in {derive_s:.1f} s)")

    runs = {side: [] for side in SIDES}
    with sync_playwright() as playwright:
        for i in range(ctx.repeats):  # interleaved, so a busy spell hits both sides alike
            for side in SIDES:
                r = measure_in_browser(playwright, pages[side])
                runs[side].append(r)
                print(
                    f"  run {i + 1}/{ctx.repeats} {side:8s} open {r['open_s']:.2f} s (load {r['load_s']:.2f}, wall "
                    f"{r['open_wall_s']:.2f}), sort {r['sort_s']:.2f} s (handler {r['sort_handler_s']:.2f}, "
                    f"layout {r['sort_layout_s']:.2f}, wall {r['sort_wall_s']:.2f}), {r['rows_drawn']} rows, "
                    f"first {r['sorted_first']} last {r['sorted_last']}, JS heap {r['js_heap_mib']:.1f} MiB, "
                    f"{r['dom_nodes']:,} nodes, renderer peak {_mib(r['renderer_peak_mib'])}",
                    flush=True,
                )
    expected = {"paged": min(ROWS_PER_PAGE, count), "baseline": count}
    for side in SIDES:
        drawn = {r["rows_drawn"] for r in runs[side]}
        if drawn != {expected[side]}:
            raise RuntimeError(f"{side}: {drawn} rows drawn, expected {expected[side]}")
    firsts = {side: {r["sorted_first"] for r in runs[side]} for side in SIDES}
    if firsts["paged"] != firsts["baseline"]:
        raise RuntimeError(f"the sorts disagree on the first row: {firsts}")

    def median(side, key):
        values = [r[key] for r in runs[side] if r[key] is not None]
        return statistics.median(values) if values else None

    keys = ("open_s", "load_s", "open_wall_s", "sort_s", "sort_wall_s", "js_heap_mib", "dom_nodes")
    summary = {
        "detections": count,
        "copies": copies,
        "cards": min(DEFAULT_TOP, count),
        "rows_per_page": ROWS_PER_PAGE,
        "repeats": ctx.repeats,
        "build_s": statistics.median(build),
        "build_runs_s": build,
        "bytes": sizes,
        "sides": {
            side: {
                **{key: median(side, key) for key in keys},
                "renderer_peak_mib": max((r["renderer_peak_mib"] or 0.0) for r in runs[side]) or None,
                "runs": runs[side],
            }
            for side in SIDES
        },
    }
    p, b = summary["sides"]["paged"], summary["sides"]["baseline"]
    summary["ratios"] = {
        "size": sizes["paged"] / sizes["baseline"],
        "open": p["open_s"] / b["open_s"],
        "sort": p["sort_s"] / b["sort_s"],
    }
    markdown = _markdown(summary)
    print()
    print(markdown)
    return {"summary": summary, "markdown": markdown}


def _mib(value):
    return "-" if value is None else f"{value:.0f} MiB"


def _markdown(s):
    p, b, ratio = s["sides"]["paged"], s["sides"]["baseline"], s["ratios"]
    n = s["repeats"]
    lines = [
        f"Input: the Kirishima threshold run's 76 detections repeated {s['copies']} times: {s['detections']:,} "
        f"detections, {s['cards']} cards. Paged: `write_report_from_run` as `detect` calls it (the table as JSON, "
        f"{s['rows_per_page']} rows drawn at a time). Baseline: the same page with every detection as a static "
        "`<tr>` row, sorted by moving the row elements. Headless Chromium (Debian's), a fresh browser for every "
        f"measurement, median of {n}, the sides interleaved; open = navigation start to `load` and the next frame, "
        "sort = click on the peak-velocity heading to the next frame, both timed in the page. JS heap (after a "
        "garbage collection) and DOM nodes after opening, from the DevTools protocol; the DOM lives outside the JS "
        "heap, so the renderer process's peak resident memory (VmHWM, largest of the runs) is given too.",
        "",
        "| page | size (MB) | build (s) | open (s) | sort (s) | JS heap (MiB) | DOM nodes | renderer peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side, r in (("paged", p), ("baseline", b)):
        build = f"{s['build_s']:.2f}" if side == "paged" else ""
        peak = "" if r["renderer_peak_mib"] is None else f"{r['renderer_peak_mib']:.0f}"
        lines.append(
            f"| {LABELS[side]} | {s['bytes'][side] / 1e6:.2f} | {build} | {r['open_s']:.2f} | {r['sort_s']:.3f} | "
            f"{r['js_heap_mib']:.1f} | {r['dom_nodes']:,.0f} | {peak} |"
        )
    lines += [
        f"| **paged / baseline** | **{ratio['size']:.2f}** |  | **{ratio['open']:.3f}** | **{ratio['sort']:.3f}** "
        "|  |  |  |",
        "",
        "Every run (s, in order): build "
        + ", ".join(f"{t:.2f}" for t in s["build_runs_s"])
        + "; "
        + "; ".join(
            f"{side} open "
            + ", ".join(f"{r['open_s']:.2f}" for r in s["sides"][side]["runs"])
            + " sort "
            + ", ".join(f"{r['sort_s']:.3f}" for r in s["sides"][side]["runs"])
            for side in SIDES
        )
        + ". Wall time seen by Playwright (median): open "
        f"{p['open_wall_s']:.2f} s paged, {b['open_wall_s']:.2f} s baseline; sort {p['sort_wall_s']:.3f} s paged, "
        f"{b['sort_wall_s']:.3f} s baseline.",
        "",
    ]
    return "\n".join(lines)
