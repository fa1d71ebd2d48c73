// Supervisor view: staffing and registration KPIs at any level with drill-down
// (city → district → street → community → grid), co-managers needed vs assigned at a
// ratio, KPIs against their targets (90 / 95 / 70 %), CSV export, and the
// inspection-frequency and staffing maps of the same area beside the table.

import { api, query } from "./api.js";
import { t } from "./i18n.js";
import { h, clear, status, errorBox, fmtNum, fmtPct, tabs, toCsv, download } from "./ui.js";

const NEXT = { district: "street", street: "community", community: "grid" };
const PARENT_LEVEL = { district: "city", street: "district", community: "street", grid: "community" };
const KPIS = [
  { key: "floating_registration_rate", i18n: "kpi.floating" },
  { key: "rental_registration_rate", i18n: "kpi.rental" },
  { key: "consistency_rate", i18n: "kpi.consistency" },
];

export function mount(section, me) {
  const left = h("div", { class: "panel wide", id: "sup-panel" });
  const right = h("div", { class: "maps", id: "sup-maps" });
  section.append(left, right);

  const s = { path: [{ level: "district", parent: me.area_code || null, name: null }], ratio: 500, rows: [], total: null };

  const crumbs = h("nav", { class: "crumbs", id: "sup-crumbs", "i18n:aria-label": "sup.path" });
  const ratioSelect = h("select", { id: "sup-ratio" },
    h("option", { value: "500", i18n: "sup.ratio500" }), h("option", { value: "1000", i18n: "sup.ratio1000" }));
  const exportBtn = h("button", { type: "button", class: "btn", id: "sup-export", i18n: "sup.export" });
  const tableBox = h("div", { id: "sup-table", class: "table-box", "aria-live": "polite" });
  left.append(
    h("h2", { class: "view-title", i18n: "sup.title" }),
    crumbs,
    h("div", { class: "row wrap toolbar" },
      h("label", { for: "sup-ratio", i18n: "sup.ratio" }), ratioSelect, exportBtn),
    tableBox,
  );

  // Both maps load at once; the one not shown stays laid out (visibility, not display)
  // so Leaflet inside it knows its size when it is shown.
  const frames = {};
  const mapTabs = tabs("supmaps", [
    { id: "inspection", i18n: "sup.map.inspection" },
    { id: "staffing", i18n: "sup.map.staffing" },
  ]);
  const stack = h("div", { class: "mapstack" });
  for (const kind of ["inspection", "staffing"]) {
    const frame = h("iframe", { class: "mapframe", id: `map-${kind}`, sandbox: "allow-scripts",
      "i18n:title": `sup.map.${kind}`, referrerpolicy: "no-referrer" });
    frames[kind] = frame;
    mapTabs.panels[kind].classList.add("mappanel");
    mapTabs.panels[kind].append(frame);
    stack.append(mapTabs.panels[kind]);
  }
  right.append(mapTabs.list, stack);

  function top() {
    return s.path[s.path.length - 1];
  }

  function renderCrumbs() {
    clear(crumbs);
    const ol = h("ol");
    s.path.forEach((step, i) => {
      const text = i === 0 ? h("span", { i18n: me.area_code ? "sup.myArea" : "sup.city" }) : step.name;
      const last = i === s.path.length - 1;
      ol.append(h("li", {}, last
        ? h("span", { "aria-current": "page" }, text)
        : h("button", { type: "button", class: "link", onclick: () => up(i) }, text)));
    });
    crumbs.append(ol);
  }

  async function fetchStaffing(level, parent) {
    if (level === "grid") {
      // /staffing?level=grid&parent= fails on the server (KeyError community_code);
      // all grids at the ratio, filtered to the community, until that is fixed.
      const all = await api(`/staffing${query({ level, ratio: s.ratio })}`);
      return all.rows.filter((r) => r.parent_code === parent);
    }
    return (await api(`/staffing${query({ level, ratio: s.ratio, parent })}`)).rows;
  }

  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    const { level, parent } = top();
    renderCrumbs();
    clear(tableBox).append(h("p", { class: "muted", i18n: "common.loading" }));
    try {
      const parentLevel = PARENT_LEVEL[level];
      const [work, staff, total] = await Promise.all([
        api(`/workload${query({ level, parent })}`),
        fetchStaffing(level, parent),
        api(`/workload${query({ level: parent ? parentLevel : "city", parent })}`),
      ]);
      if (seq !== loadSeq) return; // a later drill-down is already under way
      const byCode = new Map(staff.map((r) => [r.area_code, r]));
      s.rows = work.rows.map((r) => ({ ...r, staff: byCode.get(r.area_code) || null }));
      const totalRow = parent ? total.rows.find((r) => r.area_code === parent) : total.rows[0];
      s.total = totalRow || null;
      renderTable();
    } catch (err) {
      if (seq === loadSeq) clear(tableBox).append(errorBox(err));
    }
    if (seq === loadSeq) loadMaps(parent);
  }

  function kpiCell(row, kpi) {
    const v = row[kpi.key];
    if (v === null || v === undefined) return h("span", { class: "muted" }, "–");
    const ok = row[`${kpi.key}_ok`];
    return h("span", { class: `kpi ${ok ? "ok" : "bad"}`, title: t(ok ? "kpi.met" : "kpi.missed") },
      fmtPct(v), " ", h("span", { "aria-hidden": "true" }, ok ? "✓" : "✗"),
      h("span", { class: "sr-only", i18n: ok ? "kpi.met" : "kpi.missed" }));
  }

  function needed(row) {
    return row.staff ? row.staff.co_managers_needed : row.co_managers_needed;
  }

  function gapCell(row) {
    const gap = needed(row) - row.co_managers_assigned;
    return h("span", { class: gap > 0 ? "gap short" : gap < 0 ? "gap over" : "gap" }, gap > 0 ? `+${gap}` : String(gap));
  }

  function renderTable() {
    const { level } = top();
    const targets = s.rows[0] || s.total || {};
    const cols = [
      { i18n: level === "grid" ? "sup.grid" : `level.${level}`, render: (r) => nameCell(r, level), header: true },
      { i18n: "sup.grids", num: true, render: (r) => fmtNum(r.grids) },
      { i18n: "sup.floating", num: true, render: (r) => fmtNum(r.floating_residents) },
      { i18n: "sup.needed", num: true, render: (r) => fmtNum(needed(r)) },
      { i18n: "sup.assigned", num: true, render: (r) => fmtNum(r.co_managers_assigned) },
      { i18n: "sup.gap", num: true, render: gapCell },
      ...KPIS.map((k) => ({ i18n: k.i18n, i18nArgs: { target: fmtPct(targets[`${k.key}_target`]) }, num: true, render: (r) => kpiCell(r, k) })),
      { i18n: "sup.inspections", num: true, render: (r) => fmtNum(r.inspections_per_month, 1) },
      level === "grid"
        ? { i18n: "sup.tier", render: (r) => h("span", { class: `tag tier-${r.tier}`, i18n: `tier.${r.tier}` }) }
        : { i18n: "sup.tiers", render: (r) => `${r.grids_strengthened} / ${r.grids_key} / ${r.grids_routine}` },
    ];
    const tableEl = h("table", { class: "data", id: "sup-data" });
    tableEl.append(h("caption", { i18n: "sup.caption", i18nArgs: { n: s.rows.length, ratio: s.ratio } }));
    tableEl.append(h("thead", {}, h("tr", {}, cols.map((c) =>
      h("th", { scope: "col", class: c.num ? "num" : null, i18n: c.i18n, i18nArgs: c.i18nArgs })))));
    const body = h("tbody");
    for (const r of s.rows) body.append(row(cols, r));
    if (!s.rows.length) body.append(h("tr", {}, h("td", { colspan: cols.length, class: "muted", i18n: "common.none" })));
    tableEl.append(body);
    if (s.total) {
      const foot = row(cols, { ...s.total, staff: null, _total: true });
      tableEl.append(h("tfoot", {}, foot));
    }
    clear(tableBox).append(tableEl);
  }

  function row(cols, r) {
    const tr = h("tr", { dataset: { code: r.area_code } });
    cols.forEach((c, i) => {
      const cell = i === 0 ? h("th", { scope: "row" }) : h("td", { class: c.num ? "num" : null });
      const v = r._total && i === 0 ? h("span", { i18n: "sup.total" }) : c.render(r);
      cell.append(v instanceof Node ? v : document.createTextNode(String(v)));
      tr.append(cell);
    });
    return tr;
  }

  function nameCell(r, level) {
    const name = level === "grid" ? r.grid_id || r.area_code : r.name || r.area_code;
    if (!NEXT[level]) return h("span", {}, name);
    return h("button", { type: "button", class: "link drill", onclick: () => down(r, name),
      "aria-label": `${name} (${r.area_code})` }, name);
  }

  function down(r, name) {
    const { level } = top();
    s.path.push({ level: NEXT[level], parent: r.area_code, name });
    load();
  }

  function up(i) {
    s.path = s.path.slice(0, i + 1);
    load();
  }

  // Each frame's document is set once per drill-down, and only by the latest one: a
  // quick second click must not leave an older map (or a blank one) on screen.
  // A map page framed while this view is hidden would measure a zero-size container;
  // such pages wait until the view is shown.
  let mapsSeq = 0;
  const pendingMaps = new Map();
  function visible() {
    return !section.hidden && section.offsetParent !== null;
  }
  function showMap(frame, html) {
    if (visible()) frame.srcdoc = html;
    else pendingMaps.set(frame, html);
  }
  async function loadMaps(area) {
    const seq = ++mapsSeq;
    await Promise.all(Object.entries(frames).map(async ([kind, frame]) => {
      let html;
      try {
        html = await api(`/maps/${kind}.html${query({ area })}`, { as: "text" });
      } catch (err) {
        html = `<p style="font:14px sans-serif;padding:1em">${escapeHtml(err.detail || err.message)}</p>`;
      }
      if (seq === mapsSeq) showMap(frame, html);
    }));
  }

  function exportCsv() {
    const { level, parent } = top();
    const columns = [
      { key: "area_code" }, { key: "name" }, { key: "level" }, { key: "parent_code" }, { key: "grids" },
      { key: "floating_residents" }, { key: "residents" }, { key: "houses" }, { key: "rental_houses" },
      { header: "co_manager_ratio", value: () => s.ratio },
      { header: "co_managers_needed", value: (r) => needed(r) },
      { key: "co_managers_assigned" },
      { header: "co_managers_gap", value: (r) => needed(r) - r.co_managers_assigned },
      ...KPIS.flatMap((k) => [{ key: k.key }, { key: `${k.key}_target` }, { key: `${k.key}_ok` }]),
      { key: "inspections_per_month" }, { key: "police_inspections_per_month" },
      { key: "grids_strengthened" }, { key: "grids_key" }, { key: "grids_routine" }, { key: "tier" },
    ];
    const rows = s.rows.map((r) => ({ ...r, name: level === "grid" ? r.grid_id : r.name }));
    download(`gridmgr-${level}-${parent || "city"}-ratio${s.ratio}.csv`, toCsv(columns, rows));
    status("sup.exported", { n: rows.length });
  }

  ratioSelect.addEventListener("change", () => {
    s.ratio = Number(ratioSelect.value);
    load();
  });
  exportBtn.addEventListener("click", exportCsv);

  const ready = load();
  return {
    ready,
    shown() {
      for (const [frame, html] of pendingMaps) frame.srcdoc = html;
      pendingMaps.clear();
    },
  };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
