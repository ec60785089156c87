"""The report page's style sheet and script, inlined into ``report.html`` (no file or server is ever fetched)."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 76em; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th::after { content: " \\2195"; color: #999; }
table.sortable th[aria-sort="ascending"]::after { content: " \\2191"; color: #222; }
table.sortable th[aria-sort="descending"]::after { content: " \\2193"; color: #222; }
table.sortable tbody tr:hover { background: #fafae0; }
figure { margin: 0; } img.overview { max-width: 100%; height: auto; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 1em 0.8em; margin: 1em 0; }
.card h3 { margin: 0.2em 0 0.4em; } .card h3 .score { float: right; font-weight: normal; }
.facts { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0 0 0.6em; }
.facts dt { color: #555; } .facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.panels { display: flex; flex-wrap: wrap; gap: 0.8em; }
.panel { width: 176px; font-size: 0.8em; }
.panel img { width: 176px; height: auto; image-rendering: pixelated; border: 1px solid #bbb; display: block; }
.panel figcaption { margin: 0.2em 0; min-height: 2.4em; }
.bar { height: 10px; border: 1px solid #999; }
.ticks { display: flex; justify-content: space-between; font-variant-numeric: tabular-nums; }
.unit { text-align: center; color: #555; }
.legend-subsidence { color: #b2182b; } .legend-uplift { color: #2166ac; }
"""

# Sorts the table whose heading is clicked: numbers by each cell's data-value, text otherwise; clicking again
# reverses. Plain DOM calls only, so it runs from a file with no network and no library.
SCRIPT = """
(function () {
  "use strict";
  function key(row, column, numeric) {
    var cell = row.cells[column];
    var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
    return numeric ? parseFloat(raw) : raw.toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, column) {
      header.addEventListener("click", function () {
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        var numeric = header.getAttribute("data-type") === "number";
        Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a, column, numeric), y = key(b, column, numeric);
          var order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        var fragment = document.createDocumentFragment();
        rows.forEach(function (row) { fragment.appendChild(row); });
        body.appendChild(fragment);
      });
    });
  });
})();
"""
