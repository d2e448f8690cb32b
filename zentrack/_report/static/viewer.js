(() => {
"use strict";
// Sorting any .v-table with header buttons: a click sorts by that column, a second reverses.
// Cells carry their sort value in data-v (numbers as numbers); rows without one go last.
const COLLATE = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
for (const table of document.querySelectorAll("table.v-table")) {
  const body = table.tBodies[0];
  if (!body) continue;
  table.querySelectorAll("thead th button[data-col]").forEach((button) => {
    button.addEventListener("click", () => {
      const col = Number(button.dataset.col), num = button.dataset.type === "num";
      const dir = button.dataset.dir === "1" ? -1 : 1;
      table.querySelectorAll("thead th button[data-col]").forEach((b) => {
        delete b.dataset.dir;
        const ar = b.querySelector(".ar");
        if (ar) ar.remove();
        b.parentElement.setAttribute("aria-sort", "none");
      });
      button.dataset.dir = String(dir);
      const ar = document.createElement("span");
      ar.className = "ar";
      ar.textContent = dir > 0 ? "\u25b2" : "\u25bc";
      button.appendChild(ar);
      button.parentElement.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      const rows = [...body.rows].map((tr, i) => {
        const cell = tr.cells[col], raw = cell ? cell.dataset.v : undefined;
        const value = raw === undefined || raw === "" ? null : num ? Number(raw) : raw;
        return {tr, i, value};
      });
      rows.sort((a, b) => {
        const ma = a.value === null || (num && Number.isNaN(a.value));
        const mb = b.value === null || (num && Number.isNaN(b.value));
        if (ma || mb) return ma - mb || a.i - b.i;
        const r = num ? (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)
          : COLLATE.compare(a.value, b.value);
        return dir * r || a.i - b.i;
      });
      const frag = document.createDocumentFragment();
      for (const row of rows) frag.appendChild(row.tr);
      body.appendChild(frag);
    });
  });
}
// Selecting runs to compare: the button counts them and needs two.
const form = document.getElementById("v-compare");
if (form) {
  const boxes = () => [...form.querySelectorAll("input[name=run]")];
  const button = document.getElementById("v-compare-btn");
  const all = document.getElementById("v-all");
  const update = () => {
    const n = boxes().filter((b) => b.checked).length;
    button.disabled = n < 2;
    button.textContent = n ? "Compare " + n + " selected" : "Compare selected";
  };
  form.addEventListener("change", (ev) => {
    if (ev.target === all) boxes().forEach((b) => { b.checked = all.checked; });
    update();
  });
  update();
}
window.ztViewerReady = true;
})();
