(function () {
  "use strict";
  // Sortable tables: click a column header; numbers sort largest first, text A to Z;
  // a second click reverses. Cells sort by their data-v attribute.
  function sortKey(row, col, numeric) {
    var cell = row.cells[col];
    if (!cell) { return numeric ? NaN : ""; }
    var v = cell.getAttribute("data-v");
    if (numeric) { return parseFloat(v); }
    return (v === null ? cell.textContent : v).toLowerCase();
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "num";
        var current = th.getAttribute("aria-sort");
        var descending = current ? current === "ascending" : numeric;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = sortKey(a, col, numeric), y = sortKey(b, col, numeric);
          if (numeric) {
            var xn = isNaN(x), yn = isNaN(y);
            if (xn || yn) { return xn === yn ? 0 : (xn ? 1 : -1); }
          }
          var r = x < y ? -1 : (x > y ? 1 : 0);
          return descending ? -r : r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  // Span filter: keeps the rows whose path contains the text typed.
  var filter = document.getElementById("span-filter");
  var table = document.getElementById("span-table");
  var counter = document.getElementById("span-filter-count");
  if (filter && table) {
    filter.addEventListener("input", function () {
      var q = filter.value.trim().toLowerCase();
      var rows = table.tBodies[0].rows, shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var keep = !q || (rows[i].getAttribute("data-path") || "").toLowerCase().indexOf(q) >= 0;
        rows[i].hidden = !keep;
        if (keep) { shown++; }
      }
      if (counter) { counter.textContent = q ? shown + " of " + rows.length + " spans" : ""; }
    });
  }
})();
