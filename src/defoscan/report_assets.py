"""The report page's style sheet and script, inlined into ``report.html`` (no file or server is ever fetched)."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 76em; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
ul.warnings { color: #7a4100; background: #fff6e5; border-left: 4px solid #e0a030; padding: 0.5em 0.5em 0.5em 2em; }
p.not-scanned { color: #7a1a00; background: #fdecea; border-left: 4px solid #c0392b; padding: 0.5em 1em; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable { font-size: 0.9em; } table.sortable th { cursor: pointer; user-select: none; }
table.sortable td { white-space: nowrap; } .scroll { overflow-x: auto; }
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
.pager { margin: 0.3em 0 1em; font-variant-numeric: tabular-nums; }
.legend-subsidence { color: #b2182b; } .legend-uplift { color: #2166ac; }
"""

# Draws the detections table from its JSON a page at a time, and sorts it when a heading is clicked: numbers by
# value, text by lower case, ties in their previous order, nulls last. Plain DOM calls only, so it runs from a file
# with no network and no library.
SCRIPT = """
(function () {
  "use strict";
  function cellText(value, digits) {
    if (value === null) return "";
    if (digits === "") return String(value);
    if (digits === "int") return value.toLocaleString("en-US");
    return value.toFixed(parseInt(digits, 10));
  }
  document.querySelectorAll("table.sortable[data-source]").forEach(function (table) {
    var data = JSON.parse(document.getElementById(table.getAttribute("data-source")).textContent);
    var rows = data.rows, cards = new Set(data.cards);
    var perPage = parseInt(table.getAttribute("data-rows-per-page"), 10);
    var pager = document.getElementById(table.getAttribute("data-pager"));
    var headers = table.tHead.rows[0].cells;
    var digits = Array.prototype.map.call(headers, function (h) { return h.getAttribute("data-digits"); });
    var state = { start: 0, all: false };
    function render() {
      var end = state.all ? rows.length : Math.min(rows.length, state.start + perPage);
      var body = document.createElement("tbody");
      for (var i = state.start; i < end; i++) {
        var tr = document.createElement("tr");
        rows[i].forEach(function (value, column) {
          var td = document.createElement("td");
          var text = cellText(value, digits[column]);
          if (column === 0 && cards.has(value)) {
            var link = document.createElement("a");
            link.href = "#detection-" + value;
            link.textContent = text;
            td.appendChild(link);
          } else {
            td.textContent = text;
          }
          if (digits[column] !== "") td.className = "num";
          tr.appendChild(td);
        });
        body.appendChild(tr);
      }
      table.replaceChild(body, table.tBodies[0]);
      pager.querySelector(".range").textContent =
        "rows " + (rows.length ? state.start + 1 : 0) + "\u2013" + end + " of " + rows.length;
      pager.querySelector(".previous").disabled = state.all || state.start === 0;
      pager.querySelector(".next").disabled = state.all || end >= rows.length;
      pager.querySelector(".all").disabled = state.all || rows.length <= perPage;
    }
    pager.querySelector(".previous").addEventListener("click", function () {
      state.start = Math.max(0, state.start - perPage);
      render();
    });
    pager.querySelector(".next").addEventListener("click", function () {
      state.start += perPage;
      render();
    });
    pager.querySelector(".all").addEventListener("click", function () {
      state.all = true;
      state.start = 0;
      render();
    });
    Array.prototype.forEach.call(headers, function (header, column) {
      header.addEventListener("click", function () {
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        var numeric = header.getAttribute("data-type") === "number";
        Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var keyed = rows.map(function (row, index) {
          var value = row[column];
          return { row: row, index: index, key: value === null ? null : numeric ? value : String(value).toLowerCase() };
        });
        keyed.sort(function (a, b) {
          if (a.key === null || b.key === null) {
            return a.key === b.key ? a.index - b.index : a.key === null ? 1 : -1;
          }
          var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
          return (ascending ? order : -order) || a.index - b.index;
        });
        rows = keyed.map(function (item) { return item.row; });
        state.start = 0;
        render();
      });
    });
    render();
  });
})();
"""
