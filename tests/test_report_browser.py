"""The (synthetic) demo's report.html in a real browser: headless Chromium (Debian's package), driven by Playwright.

Chromium is installed by ``make test`` (``apt-get install chromium``); its absence fails these tests rather than
skipping them, so a machine without it cannot pass the suite unnoticed. Playwright drives the system's browser
(``executable_path``); ``playwright install`` is never run: no browser is downloaded.
"""

import json
import shutil

import pytest
from playwright.sync_api import sync_playwright

from defoscan.cli import main
from defoscan.report import DEFAULT_TOP, write_report_from_run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "demo"
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(out)])
    assert exit_info.value.code == 0
    return out


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


def open_page(browser, path):
    """The page loaded from disk, with the console errors, uncaught exceptions and failed requests it raised."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else 0)
    page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url} {request.failure}"))
    page.on(
        "request", lambda request: 0 if request.url.startswith(("file:", "data:")) else problems.append(request.url)
    )
    page.goto(path.as_uri(), wait_until="load")
    return page, problems


def column_values(page, column):
    """The shown table's cells of one column, as numbers."""
    texts = page.eval_on_selector_all(
        "table.detections tbody tr", f"rows => rows.map(r => r.cells[{column}].textContent)"
    )
    return [float(t.replace(",", "")) for t in texts]


def test_demo_report_renders_offline_with_cards_and_table(demo_run, browser):
    count = json.loads((demo_run / "run.json").read_text())["detections"]["count"]
    assert count > 0
    page, problems = open_page(browser, demo_run / "report.html")
    try:
        assert page.title() == f"defoscan report: {count} detection(s)"
        assert page.locator("article.card").count() == min(DEFAULT_TOP, count)
        assert page.locator("table.detections tbody tr").count() == count
        assert page.locator("article.card figure.panel img").count() == 4 * min(DEFAULT_TOP, count)
        # Every image decoded (the overview and the thumbnails are inline PNGs).
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("img.overview").evaluate("i => i.naturalWidth") >= 1000
        truths = json.loads((demo_run / "scores.json").read_text())["per_truth"]
        assert page.locator("#truth").is_visible()
        assert page.locator("table.truth tbody tr").count() == len(truths) > 0
        assert problems == []
    finally:
        page.close()


def test_sorting_a_column(demo_run, browser):
    page, problems = open_page(browser, demo_run / "report.html")
    try:
        header = page.locator("table.detections thead th", has_text="peak as mapped")
        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        column = page.locator("table.detections thead th").all_inner_texts().index(header.inner_text())
        values = column_values(page, column)
        assert values == sorted(values) and values[0] < values[-1]
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        assert column_values(page, column) == sorted(values, reverse=True)
        page.locator("table.detections thead th", has_text="#").click()  # back to the numbers, ascending
        ids = column_values(page, 0)
        assert ids == sorted(ids)
        assert problems == []
    finally:
        page.close()


def test_rebuilt_report_with_fewer_cards(demo_run, browser, tmp_path):
    copy = tmp_path / "demo"
    shutil.copytree(demo_run, copy)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(copy), "--top", "5"])
    assert exit_info.value.code == 0
    count = json.loads((copy / "run.json").read_text())["detections"]["count"]
    page, problems = open_page(browser, copy / "report.html")
    try:
        assert page.locator("article.card").count() == min(5, count)
        assert page.locator("table.detections tbody tr").count() == count
        page.locator("table.detections tbody tr a").first.click()  # a number links to its card
        assert page.evaluate("location.hash") == "#detection-1"
        assert problems == []
    finally:
        page.close()


def test_table_pages(demo_run, browser, tmp_path):
    """A page of rows at a time (a country's table stays quick to open); sorting orders all rows, not the page."""
    copy = tmp_path / "demo"
    shutil.copytree(demo_run, copy)
    write_report_from_run(copy, rows_per_page=2)
    count = json.loads((copy / "run.json").read_text())["detections"]["count"]
    assert count > 2
    page, problems = open_page(browser, copy / "report.html")
    try:
        rows = page.locator("table.detections tbody tr")
        assert rows.count() == 2
        assert page.locator("#detections-pager .range").inner_text() == f"rows 1\u20132 of {count}"
        page.locator("#detections-pager .next").click()
        assert column_values(page, 0)[0] == 3
        page.locator("table.detections thead th", has_text="mean as mapped").click()
        assert page.locator("#detections-pager .range").inner_text().startswith("rows 1\u20132")
        frame = json.loads((copy / "detections.geojson").read_text())["features"]
        lowest = min(f["properties"]["mean_velocity"] for f in frame)
        column = page.locator("table.detections thead th").all_inner_texts().index("mean as mapped (mm/yr)")
        assert column_values(page, column)[0] == pytest.approx(lowest, abs=0.05)
        page.locator("#detections-pager .all").click()
        assert rows.count() == count
        assert problems == []
    finally:
        page.close()
