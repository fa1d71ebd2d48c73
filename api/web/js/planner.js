// Planner view: open or create a draft plan; draw a new boundary, split a grid with a
// line, merge grids, lock grids (all through /plans); after each edit the changed grids'
// workload, tier and staffing before and after; rule violations point at the grids on the
// map; rebalance a street and compare; adopt with confirmation (supervisor or admin).

import { api, ApiError, query } from "./api.js";
import { labelAttr, onLanguageChange, t } from "./i18n.js";
import { makeMap, tierStyle, fitTo, refreshSize } from "./mapbase.js";
import { h, clear, put, status, tabs, errorBox, fmtNum, fmtPct, confirmDialog } from "./ui.js";

const L = window.L;
const EDIT_ROLES = ["planner", "admin"];
const ADOPT_ROLES = ["supervisor", "admin"];
const AREA_REQUIRED_ABOVE = 400; // grids: beyond this, work one street at a time

export function mount(section, me) {
  const mapEl = h("div", { class: "map", id: "planner-map" });
  labelAttr(mapEl, "aria-label", "plan.mapLabel");
  const panel = h("div", { class: "panel", id: "planner-panel" });
  section.append(mapEl, panel);
  const map = makeMap(mapEl);
  const gridLayer = L.featureGroup().addTo(map);

  const canEdit = EDIT_ROLES.includes(me.role);
  const canAdopt = ADOPT_ROLES.includes(me.role);
  const s = {
    plans: [], plan: null, area: "", grids: new Map(), selected: new Set(), offending: new Set(),
    drawing: null, diff: null,
  };

  // ---------------------------------------------------------------- panel
  const planSelect = h("select", { id: "plan-select" });
  const planStatus = h("span", { id: "plan-status", class: "tag" });
  const newName = h("input", { id: "new-plan-name", required: true, maxlength: "100", autocomplete: "off",
    "i18n:placeholder": "plan.newNamePlaceholder" });
  const newForm = h("form", { id: "new-plan", class: "row" },
    h("label", { for: "new-plan-name", class: "sr-only", i18n: "plan.newName" }), newName,
    h("button", { type: "submit", class: "btn", i18n: "plan.create", disabled: !canEdit }));
  const areaSelect = h("select", { id: "plan-area" }, h("option", { value: "", i18n: "plan.wholeCity" }));

  const tab = tabs("planner", [
    { id: "edit", i18n: "plan.tabEdit" },
    { id: "compare", i18n: "plan.tabCompare", onshow: () => renderDiff() },
    { id: "rebalance", i18n: "plan.tabRebalance" },
  ]);

  const tool = (id, key, fn) => h("button", { type: "button", class: "btn", id, i18n: key, onclick: fn });
  const tools = {
    split: tool("tool-split", "plan.split", () => startDraw("split")),
    reshape: tool("tool-reshape", "plan.reshape", () => startDraw("reshape")),
    merge: tool("tool-merge", "plan.merge", () => merge()),
    lock: tool("tool-lock", "plan.lock", () => lock(true)),
    unlock: tool("tool-unlock", "plan.unlock", () => lock(false)),
    undo: tool("tool-undo", "plan.undo", () => runOp("undo", null)),
  };
  const cancelDraw = h("button", { type: "button", class: "btn ghost", id: "tool-cancel", i18n: "plan.cancelDraw",
    hidden: true, onclick: () => stopDraw() });
  const drawHint = h("p", { id: "draw-hint", class: "hint", "aria-live": "polite" });
  const wkt = h("textarea", { id: "wkt", rows: "2", spellcheck: "false", "i18n:placeholder": "plan.wktPlaceholder" });
  const wktBox = h("details", { class: "wkt" },
    h("summary", { i18n: "plan.wktSummary" }),
    h("label", { for: "wkt", class: "sr-only", i18n: "plan.wktSummary" }), wkt,
    h("div", { class: "row" },
      h("button", { type: "button", class: "btn small", id: "wkt-split", i18n: "plan.wktSplit", onclick: () => textOp("split") }),
      h("button", { type: "button", class: "btn small", id: "wkt-reshape", i18n: "plan.wktReshape", onclick: () => textOp("reshape") })));
  const errorArea = h("div", { id: "plan-error" });
  const editResult = h("div", { id: "edit-result", "aria-live": "polite" });
  const gridList = h("fieldset", { id: "grid-list", class: "grid-list" }, h("legend", { i18n: "plan.grids" }));
  tab.panels.edit.append(
    h("p", { class: "muted small", i18n: "plan.selectHint" }),
    h("div", { class: "row wrap toolbar", role: "toolbar", "i18n:aria-label": "plan.tools" },
      ...Object.values(tools), cancelDraw),
    drawHint, wktBox, errorArea, editResult, gridList);

  const diffBox = h("div", { id: "diff-box" });
  tab.panels.compare.append(
    h("button", { type: "button", class: "btn small", i18n: "plan.refreshDiff", onclick: () => loadDiff(true) }), diffBox);

  const rbGrids = h("input", { id: "rb-grids", type: "number", min: "1", max: "500", value: "2", required: true });
  const rbForm = h("form", { id: "rb-form", class: "row wrap" },
    h("label", { for: "rb-grids", i18n: "plan.rbGrids" }), rbGrids,
    h("button", { type: "submit", class: "btn", i18n: "plan.rbRun", disabled: !canEdit }));
  const rbResult = h("div", { id: "rb-result", "aria-live": "polite" });
  const adoptBtn = h("button", { type: "button", class: "btn danger", id: "adopt", i18n: "plan.adopt", disabled: !canAdopt });
  // An open draft keeps a link per house of the city current; a planner gives up one here.
  const discardBtn = h("button", { type: "button", class: "btn small", id: "discard", i18n: "plan.discard", disabled: true });
  tab.panels.rebalance.append(
    h("p", { class: "muted small", i18n: "plan.rbHint" }), rbForm, rbResult,
    h("hr"), h("h3", { i18n: "plan.adoptTitle" }),
    h("p", { class: "muted small", i18n: canAdopt ? "plan.adoptHint" : "plan.adoptNeedsRole" }), adoptBtn);

  panel.append(
    h("h2", { class: "view-title", i18n: "plan.title" }),
    h("div", { class: "row wrap" }, h("label", { for: "plan-select", i18n: "plan.plan" }), planSelect, planStatus,
      discardBtn),
    newForm,
    h("div", { class: "row wrap" }, h("label", { for: "plan-area", i18n: "plan.area" }), areaSelect),
    tab.list, tab.panels.edit, tab.panels.compare, tab.panels.rebalance);

  // ---------------------------------------------------------------- plans and grids
  function plan() {
    return s.plans.find((p) => p.name === s.plan) || null;
  }

  function editable() {
    const p = plan();
    return canEdit && p && p.status === "draft";
  }

  async function loadPlans(select) {
    s.plans = await api("/plans");
    renderPlanOptions();
    const drafts = s.plans.filter((p) => p.status === "draft");
    const adopted = s.plans.find((p) => p.status === "adopted");
    s.plan = select || (s.plan && s.plans.some((p) => p.name === s.plan) ? s.plan
      : (drafts.length ? drafts[drafts.length - 1].name : adopted && adopted.name));
    planSelect.value = s.plan || "";
  }

  function renderPlanOptions() {
    const chosen = planSelect.value;
    clear(planSelect);
    for (const p of s.plans) {
      planSelect.append(h("option", { value: p.name }, `${p.name} · ${t(`planStatus.${p.status}`)}`));
    }
    if (chosen) planSelect.value = chosen;
  }

  async function loadAreas() {
    const streets = await api(`/workload${query({ level: "street" })}`);
    for (const r of streets.rows) areaSelect.append(h("option", { value: r.area_code }, `${r.name || r.area_code} (${r.area_code})`));
    const p = plan();
    if (p && p.grids > AREA_REQUIRED_ABOVE && streets.rows.length) {
      areaSelect.querySelector('option[value=""]').disabled = true;
      s.area = streets.rows[0].area_code;
      areaSelect.value = s.area;
    }
  }

  async function loadGrids({ fit = false } = {}) {
    if (!s.plan) return new Map();
    const fc = await api(`/plans/${encodeURIComponent(s.plan)}/grids${query({ area: s.area })}`);
    const props = new Map();
    gridLayer.clearLayers();
    s.grids.clear();
    for (const f of fc.features) {
      props.set(f.id, f.properties);
      const layer = L.geoJSON(f, { style: () => styleOf(f.id, f.properties) });
      layer.bindTooltip(() => tooltip(f.properties), { sticky: true });
      layer.on("click", (e) => onGridClick(f.id, e));
      layer.addTo(gridLayer);
      s.grids.set(f.id, { layer, props: f.properties });
    }
    for (const gid of [...s.selected]) if (!s.grids.has(gid)) s.selected.delete(gid);
    if (fit) fitTo(map, gridLayer);
    renderGridList();
    renderPlanState();
    return props;
  }

  function styleOf(gid, props) {
    return tierStyle(props.tier, { selected: s.selected.has(gid), locked: props.locked, offending: s.offending.has(gid) });
  }

  function restyle() {
    for (const [gid, g] of s.grids) g.layer.setStyle(styleOf(gid, g.props));
  }

  function tooltip(p) {
    return `<strong>${p.grid_id}</strong>${p.locked ? " 🔒" : ""}<br>${t(`tier.${p.tier}`)} · ${t("sup.floating")} ${fmtNum(p.floating_residents)}<br>${t("sup.needed")} ${p.co_managers_needed} / ${t("sup.assigned")} ${p.co_managers_assigned}`;
  }

  function renderGridList() {
    const legend = gridList.querySelector("legend");
    clear(gridList).append(legend);
    for (const [gid, g] of [...s.grids].sort((a, b) => a[0].localeCompare(b[0]))) {
      const id = `pick-${gid}`;
      const box = h("input", { type: "checkbox", id, value: gid, checked: s.selected.has(gid) });
      box.addEventListener("change", () => {
        if (box.checked) s.selected.add(gid);
        else s.selected.delete(gid);
        restyle();
        renderPlanState();
        zoomToSelection();
      });
      gridList.append(h("div", { class: `pick${s.offending.has(gid) ? " offending" : ""}` }, box,
        h("label", { for: id },
          h("span", { class: "code" }, gid), g.props.locked ? h("span", { class: "tag", i18n: "plan.locked" }) : null,
          " ", h("span", { class: `tag tier-${g.props.tier}`, i18n: `tier.${g.props.tier}` }),
          " ", h("span", { class: "muted" }, fmtNum(g.props.floating_residents)))));
    }
  }

  function renderPlanState() {
    const p = plan();
    planStatus.className = `tag status-${p ? p.status : "none"}`;
    planStatus.dataset.i18n = p ? `planStatus.${p.status}` : "plan.none";
    planStatus.textContent = t(planStatus.dataset.i18n);
    const n = s.selected.size;
    const ok = editable() && !s.drawing;
    tools.split.disabled = !(ok && n === 1);
    tools.reshape.disabled = !(ok && n === 1);
    tools.merge.disabled = !(ok && n >= 2);
    tools.lock.disabled = !(ok && n >= 1);
    tools.unlock.disabled = !(ok && n >= 1);
    tools.undo.disabled = !(ok && p.edits > 0);
    adoptBtn.disabled = !(canAdopt && p && p.status === "draft");
    discardBtn.disabled = !(canEdit && p && p.status === "draft");
    rbForm.querySelector("button").disabled = !(ok && s.area);
  }

  function onGridClick(gid, e) {
    if (s.drawing) return; // clicks place vertices while drawing
    L.DomEvent.stop(e);
    const add = e.originalEvent && (e.originalEvent.shiftKey || e.originalEvent.ctrlKey || e.originalEvent.metaKey);
    if (add) {
      if (s.selected.has(gid)) s.selected.delete(gid);
      else s.selected.add(gid);
    } else {
      s.selected = new Set(s.selected.size === 1 && s.selected.has(gid) ? [] : [gid]);
    }
    restyle();
    renderGridList();
    renderPlanState();
  }

  // ---------------------------------------------------------------- edits
  async function runOp(op, body) {
    const before = new Map([...s.grids].map(([gid, g]) => [gid, g.props]));
    clear(errorArea);
    clear(editResult).append(h("p", { class: "muted", i18n: "common.working" }));
    const started = performance.now();
    let res;
    try {
      res = await api(`/plans/${encodeURIComponent(s.plan)}/${op}`, { method: "POST", body: body || undefined });
    } catch (err) {
      clear(editResult);
      showError(err);
      return null;
    }
    s.offending.clear();
    await loadPlans(s.plan);
    const after = await loadGrids();
    s.selected = new Set(res.added.length ? res.added : res.reshaped.filter((g) => after.has(g)));
    restyle();
    renderGridList();
    renderPlanState();
    renderEdit(res, before, after, performance.now() - started);
    status("plan.done", { op: opLabel(res.op) });
    loadDiff(true);
    return res;
  }

  function showError(err) {
    const grids = new Set();
    if (err instanceof ApiError) {
      for (const p of err.problems || []) for (const g of p.grids || []) grids.add(g);
      if (!grids.size) for (const gid of s.grids.keys()) if (err.detail.includes(gid)) grids.add(gid);
    }
    s.offending = grids;
    restyle();
    renderGridList();
    const box = errorBox(err, err.code === "plan_rule_violation" ? "plan.rejected" : "common.error");
    if (grids.size) {
      const links = [...grids].flatMap((g, i) => [i ? ", " : "",
        h("button", { type: "button", class: "link code", onclick: () => zoomTo(g) }, g)]);
      box.append(h("p", {}, h("span", { i18n: "plan.offending" }), " ", ...links));
      const group = L.featureGroup([...grids].filter((g) => s.grids.has(g)).map((g) => s.grids.get(g).layer));
      fitTo(map, group, 40);
    }
    clear(errorArea).append(box);
  }

  function zoomToSelection() {
    const layers = [...s.selected].filter((g) => s.grids.has(g)).map((g) => s.grids.get(g).layer);
    if (layers.length) fitTo(map, L.featureGroup(layers), 40);
  }

  // "split", or "undo split" for an undo: the operation's name in the current language.
  function opLabel(op) {
    const [first, ...rest] = String(op).split(" ");
    return [first, ...rest].map((w) => t(`op.${w}`)).join(" ");
  }

  function zoomTo(gid) {
    const g = s.grids.get(gid);
    if (g) fitTo(map, g.layer, 40);
  }

  const COLS = [
    ["floating_residents", "sup.floating", 0], ["houses", "plan.houses", 0],
    ["inspections_per_month", "sup.inspections", 1], ["co_managers_needed", "sup.needed", 0],
    ["co_managers_assigned", "sup.assigned", 0],
  ];

  function workloadTable(id, captionKey, rows) {
    const tbl = h("table", { class: "data compact", id },
      h("caption", { i18n: captionKey }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", i18n: "sup.grid" }),
        ...COLS.map(([, key]) => h("th", { scope: "col", class: "num", i18n: key })),
        h("th", { scope: "col", i18n: "sup.tier" }))));
    const body = h("tbody");
    for (const [gid, p] of rows) {
      body.append(h("tr", { dataset: { grid: gid } }, h("th", { scope: "row", class: "code" }, gid),
        ...COLS.map(([k, , d]) => h("td", { class: "num" }, p ? fmtNum(p[k], d) : "–")),
        h("td", {}, p ? h("span", { class: `tag tier-${p.tier}`, i18n: `tier.${p.tier}` }) : "–")));
    }
    if (!rows.length) body.append(h("tr", {}, h("td", { colspan: COLS.length + 2, class: "muted", i18n: "common.none" })));
    tbl.append(body);
    return tbl;
  }

  function renderEdit(res, before, after, ms) {
    // A lock or restaffing changes no boundary; its grids still get before/after rows.
    const same = res.retouched || [];
    const gone = [...res.removed, ...res.reshaped, ...same];
    const made = [...res.added, ...res.reshaped, ...same];
    put(editResult,
      h("p", { class: "ok", id: "edit-summary", i18n: "plan.editSummary", i18nArgs: {
        op: opLabel(res.op), removed: res.removed.join(", ") || "–", added: res.added.join(", ") || "–",
        reshaped: res.reshaped.join(", ") || "–", moved: res.houses_moved, ms: Math.round(ms),
      } }),
      gone.length || made.length ? h("div", { class: "before-after" },
        workloadTable("edit-before", "plan.before", gone.map((g) => [g, before.get(g)])),
        workloadTable("edit-after", "plan.after", made.map((g) => [g, after.get(g)]))) : null,
      res.notes && res.notes.length ? h("ul", { class: "notes" }, res.notes.map((n) => h("li", {}, n))) : null,
      h("div", { id: "diff-summary" }),
    );
  }

  function needOne() {
    return [...s.selected][0];
  }

  async function merge() {
    await runOp("merge", { grid_ids: [...s.selected].sort() });
  }

  async function lock(locked) {
    await runOp("lock", { grid_ids: [...s.selected], locked });
  }

  async function textOp(op) {
    const text = wkt.value.trim();
    if (!text || s.selected.size !== 1) {
      status("plan.needOneAndText", null, "error");
      return;
    }
    const grid_id = needOne();
    await runOp(op, op === "split" ? { grid_id, line: text } : { grid_id, geometry: text });
  }

  // ---------------------------------------------------------------- drawing (Geoman)
  function startDraw(kind) {
    if (s.selected.size !== 1) return;
    s.drawing = kind;
    cancelDraw.hidden = false;
    drawHint.dataset.i18n = kind === "split" ? "plan.drawLineHint" : "plan.drawShapeHint";
    drawHint.textContent = t(drawHint.dataset.i18n);
    renderPlanState();
    map.pm.enableDraw(kind === "split" ? "Line" : "Polygon", { snappable: false, continueDrawing: false });
    mapEl.focus();
  }

  function stopDraw() {
    s.drawing = null;
    map.pm.disableDraw();
    cancelDraw.hidden = true;
    delete drawHint.dataset.i18n;
    drawHint.textContent = "";
    renderPlanState();
  }

  map.on("pm:create", async (e) => {
    const kind = s.drawing;
    const geometry = e.layer.toGeoJSON().geometry;
    e.layer.remove();
    stopDraw();
    const grid_id = needOne();
    if (!kind || !grid_id) return;
    await runOp(kind, kind === "split" ? { grid_id, line: geometry } : { grid_id, geometry });
  });

  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && s.drawing) stopDraw();
  });

  // ---------------------------------------------------------------- compare with the adopted plan
  async function loadDiff(force = false) {
    const p = plan();
    if (!p || p.status === "adopted") {
      s.diff = null;
      renderDiff();
      return;
    }
    if (s.diff && !force) return;
    try {
      s.diff = await api(`/plans/${encodeURIComponent(p.name)}/diff`);
    } catch (err) {
      s.diff = { error: err };
    }
    renderDiff();
  }

  function diffLine(d) {
    return h("p", { class: "diff-line", i18n: "plan.diffSummary", i18nArgs: {
      other: d.other, moved: d.houses_moved, added: d.grids.added.length,
      removed: d.grids.removed.length, reshaped: d.grids.reshaped.length,
    } });
  }

  function renderDiff() {
    const summary = document.getElementById("diff-summary");
    clear(diffBox);
    if (summary) clear(summary);
    const d = s.diff;
    if (!d) {
      diffBox.append(h("p", { class: "muted", i18n: "plan.noDiff" }));
      return;
    }
    if (d.error) {
      diffBox.append(errorBox(d.error));
      return;
    }
    if (summary) summary.append(diffLine(d));
    const before = d.before.map((r) => [r.grid_id, r]);
    const after = d.after.map((r) => [r.grid_id, r]);
    diffBox.append(diffLine(d), h("div", { class: "before-after" },
      workloadTable("diff-before", "plan.beforeAdopted", before),
      workloadTable("diff-after", "plan.afterPlan", after)));
    if (d.rollup && d.rollup.length) {
      const cols = [["grids", 0], ["floating_residents", 0], ["co_managers_needed", 0], ["co_managers_gap", 0], ["inspections_per_month", 1]];
      const tbl = h("table", { class: "data compact", id: "diff-rollup" },
        h("caption", { i18n: "plan.rollup" }),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", i18n: "plan.areaCol" }),
          ...cols.map(([k]) => h("th", { scope: "col", class: "num", i18n: `col.${k}` })))));
      const body = h("tbody");
      for (const r of d.rollup) {
        body.append(h("tr", {}, h("th", { scope: "row" }, h("span", { i18n: `level.${r.level}` }), ` ${r.area_code}`),
          ...cols.map(([k, dg]) => h("td", { class: "num" }, change(r[`${k}_before`], r[`${k}_after`], r[`${k}_change`], dg)))));
      }
      tbl.append(body);
      diffBox.append(tbl);
    }
  }

  function change(b, a, c, digits) {
    const delta = c === null || c === undefined ? "" : ` (${c > 0 ? "+" : ""}${fmtNum(c, digits)})`;
    if (b === null || b === undefined || a === null || a === undefined) return delta.trim() || "–";
    return `${fmtNum(b, digits)} → ${fmtNum(a, digits)}${delta}`;
  }

  // ---------------------------------------------------------------- rebalance and adopt
  rbForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!s.area) {
      status("plan.rbNeedsArea", null, "error");
      return;
    }
    clear(rbResult).append(h("p", { class: "muted", i18n: "common.working" }));
    const before = new Map([...s.grids].map(([gid, g]) => [gid, g.props]));
    try {
      const res = await api(`/plans/${encodeURIComponent(s.plan)}/rebalance`, { method: "POST",
        body: { area: s.area, grids: Number(rbGrids.value) } });
      await loadPlans(s.plan);
      const after = await loadGrids();
      renderRebalance(res);
      renderEdit(res.op, before, after, res.op.seconds * 1000);
      loadDiff(true);
    } catch (err) {
      clear(rbResult);
      showError(err);
      rbResult.append(errorBox(err));
    }
  });

  function renderRebalance(res) {
    const rows = [["plan.rbCurrent", res.current], ["plan.rbProposal", res.proposal]];
    if (res.maxp) rows.push(["plan.rbMaxp", res.maxp]);
    const keys = [["k", "plan.rbK", 0], ["min", "plan.rbMin", 0], ["max", "plan.rbMax", 0], ["cv", "plan.rbCv", 2],
      ["co_managers", "plan.rbCoManagers", 0]];
    clear(rbResult).append(h("table", { class: "data compact", id: "rb-table" },
      h("caption", { i18n: "plan.rbCaption", i18nArgs: { area: res.area, floor: res.floor, ceiling: res.ceiling } }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }), ...keys.map(([, key]) => h("th", { scope: "col", class: "num", i18n: key })),
        h("th", { scope: "col", class: "num", i18n: "plan.rbWithin" }))),
      h("tbody", {}, rows.map(([key, m]) => h("tr", {}, h("th", { scope: "row", i18n: key }),
        ...keys.map(([k, , d]) => h("td", { class: "num" }, m && m[k] !== undefined ? fmtNum(m[k], d) : "–")),
        h("td", { class: "num" }, m ? fmtPct(m.within_bounds) : "–"))))));
  }

  adoptBtn.addEventListener("click", async () => {
    const p = plan();
    if (!p) return;
    await loadDiff(true);
    const body = h("div", {}, h("p", { i18n: "plan.adoptConfirm", i18nArgs: { plan: p.name } }),
      s.diff && !s.diff.error ? diffLine(s.diff) : null);
    if (!(await confirmDialog("plan.adoptTitle", body, { okKey: "plan.adopt" }))) return;
    try {
      const res = await api(`/plans/${encodeURIComponent(p.name)}/adopt`, { method: "POST", body: {} });
      status("plan.adopted", { plan: res.plan, moved: res.houses_moved });
      await loadPlans(res.plan);
      await loadGrids();
      loadDiff(true);
    } catch (err) {
      showError(err);
    }
  });

  discardBtn.addEventListener("click", async () => {
    const p = plan();
    if (!p || p.status !== "draft") return;
    const body = h("p", { i18n: "plan.discardConfirm", i18nArgs: { plan: p.name } });
    if (!(await confirmDialog("plan.discardTitle", body, { okKey: "plan.discard" }))) return;
    try {
      await api(`/plans/${encodeURIComponent(p.name)}/discard`, { method: "POST" });
      s.plan = null;
      s.selected.clear();
      await loadPlans();
      await loadGrids();
      s.diff = null;
      renderDiff();
      status("plan.discarded", { plan: p.name });
    } catch (err) {
      showError(err);
    }
  });

  // ---------------------------------------------------------------- wiring
  newForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const created = await api("/plans", { method: "POST", body: { name: newName.value.trim() } });
      newName.value = "";
      s.selected.clear();
      await loadPlans(created.name);
      await loadGrids({ fit: true });
      s.diff = null;
      renderDiff();
      status("plan.createdDraft", { plan: created.name });
    } catch (err) {
      showError(err);
    }
  });
  planSelect.addEventListener("change", async () => {
    s.plan = planSelect.value;
    s.selected.clear();
    s.offending.clear();
    clear(editResult);
    clear(errorArea);
    await loadGrids({ fit: true });
    loadDiff(true);
  });
  areaSelect.addEventListener("change", async () => {
    s.area = areaSelect.value;
    s.selected.clear();
    await loadGrids({ fit: true });
    const n = s.grids.size;
    if (n) rbGrids.value = String(n);
  });

  onLanguageChange(renderPlanOptions);

  const ready = (async () => {
    await loadPlans();
    await loadAreas();
    await loadGrids({ fit: true });
    rbGrids.value = String(Math.max(1, s.grids.size));
    loadDiff();
  })().catch((err) => panel.prepend(errorBox(err)));

  return {
    ready,
    map,
    shown() {
      refreshSize(map);
    },
  };
}
