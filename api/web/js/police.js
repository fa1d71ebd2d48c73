// Police view (社区民警): the grid map of the officer's area; find a house by code or
// address, or click it; its residents (以房找人), rental class and next inspection; the
// week's inspection list of a grid, overdue first; record an inspection.

import { api, allFeatures, query } from "./api.js";
import { labelAttr } from "./i18n.js";
import { makeMap, tierStyle, fitTo, refreshSize } from "./mapbase.js";
import { h, clear, put, status, table, tabs, errorBox, today, displayCode } from "./ui.js";

const L = window.L;
const CODE_RE = /^[0-9]{22}[0-9X]$/;
const MAX_HOUSE_PAGES = 3;

export function mount(section, me) {
  const mapEl = h("div", { class: "map", id: "police-map" });
  labelAttr(mapEl, "aria-label", "police.mapLabel");
  const panel = h("div", { class: "panel", id: "police-panel" });
  section.append(mapEl, panel);

  const map = makeMap(mapEl);
  const houseRenderer = L.canvas({ padding: 0.3 });
  const gridLayer = L.geoJSON(null, { style: (f) => tierStyle(f.properties.tier) }).addTo(map);
  const houseLayer = L.layerGroup().addTo(map);
  const focusLayer = L.layerGroup().addTo(map);
  const s = { grids: new Map(), selectedGrid: null, house: null };

  // ---------------------------------------------------------------- panel
  const tab = tabs("police", [
    { id: "house", i18n: "police.tabHouse" },
    { id: "inspections", i18n: "police.tabInspections" },
  ]);
  panel.append(h("h2", { class: "view-title", i18n: "police.title" }), tab.list,
    tab.panels.house, tab.panels.inspections);

  const searchInput = h("input", { id: "house-query", type: "search", required: true, autocomplete: "off",
    "i18n:placeholder": "police.searchPlaceholder" });
  const searchForm = h("form", { id: "house-search", class: "row", role: "search" },
    h("label", { for: "house-query", class: "sr-only", i18n: "police.searchLabel" }),
    searchInput, h("button", { type: "submit", class: "btn primary", i18n: "police.search" }));
  const results = h("div", { id: "search-results" });
  const detail = h("div", { id: "house-detail", "aria-live": "polite" },
    h("p", { class: "muted", i18n: "police.houseHint" }));
  tab.panels.house.append(searchForm, results, detail);

  const gridSelect = h("select", { id: "insp-grid" });
  const weekInput = h("input", { id: "insp-week", type: "date", value: today() });
  const listForm = h("form", { id: "insp-form", class: "row wrap" },
    h("label", { for: "insp-grid", i18n: "police.grid" }), gridSelect,
    h("label", { for: "insp-week", i18n: "police.week" }), weekInput,
    h("button", { type: "submit", class: "btn", i18n: "police.loadList" }));
  const list = h("div", { id: "insp-list" });
  const recCode = h("input", { id: "rec-code", required: true, autocomplete: "off", spellcheck: "false" });
  const recDate = h("input", { id: "rec-date", type: "date", required: true, value: today(), max: today() });
  const recInspector = h("input", { id: "rec-inspector", required: true, maxlength: "100", value: me.name });
  const recOutcome = h("input", { id: "rec-outcome", required: true, maxlength: "200", list: "outcomes" });
  const outcomes = h("datalist", { id: "outcomes" },
    ["outcome.normal", "outcome.fixed", "outcome.absent", "outcome.report"].map((k) => h("option", { "i18n:value": k })));
  const recResult = h("div", { id: "record-result", "aria-live": "polite" });
  const recordForm = h("form", { id: "record-form", class: "form-grid" },
    h("h3", { i18n: "police.recordTitle" }),
    h("label", { for: "rec-code", i18n: "police.houseCode" }), recCode,
    h("label", { for: "rec-date", i18n: "police.inspectedOn" }), recDate,
    h("label", { for: "rec-inspector", i18n: "police.inspector" }), recInspector,
    h("label", { for: "rec-outcome", i18n: "police.outcome" }), recOutcome, outcomes,
    h("button", { type: "submit", class: "btn primary", i18n: "police.record" }), recResult);
  tab.panels.inspections.append(listForm, list, recordForm);

  // ---------------------------------------------------------------- map data
  async function loadArea() {
    if (me.area_code) {
      try {
        const area = await api(`/collections/areas/items/${encodeURIComponent(me.area_code)}`);
        L.geoJSON(area, { interactive: false, style: { color: "#444", weight: 2, dashArray: "8 6", fill: false } }).addTo(map);
      } catch {
        /* the outline is decoration */
      }
    }
    const features = await allFeatures(`/collections/grids/items${query({ limit: 1000 })}`, 2000);
    gridLayer.clearLayers();
    clear(gridSelect);
    for (const f of features) {
      gridLayer.addData(f);
      gridSelect.append(h("option", { value: f.id }, f.id));
    }
    gridLayer.eachLayer((layer) => {
      const gid = layer.feature.id;
      s.grids.set(gid, layer);
      layer.bindTooltip(gid, { sticky: true });
      layer.on("click", (e) => onGridClick(gid, e));
    });
    fitTo(map, gridLayer);
    if (features.length) await selectGrid(features[0].id, { fit: false });
  }

  async function selectGrid(gid, { fit = true } = {}) {
    if (s.selectedGrid && s.grids.get(s.selectedGrid)) {
      const old = s.grids.get(s.selectedGrid);
      old.setStyle(tierStyle(old.feature.properties.tier));
    }
    s.selectedGrid = gid;
    const layer = s.grids.get(gid);
    if (layer) {
      layer.setStyle(tierStyle(layer.feature.properties.tier, { selected: true }));
      if (fit) fitTo(map, layer);
    }
    gridSelect.value = gid;
    await Promise.all([loadHouses(gid), loadList()]);
  }

  async function onGridClick(gid, e) {
    if (gid !== s.selectedGrid) {
      await selectGrid(gid, { fit: false });
      return;
    }
    // Inside the selected grid: the nearest house to the click.
    const near = await api(`/houses${query({ lon: e.latlng.lng.toFixed(6), lat: e.latlng.lat.toFixed(6), radius_m: 60, limit: 1 })}`);
    if (near.houses.length) await openHouse(near.houses[0].house_code);
    else status("police.noHouseHere");
  }

  async function loadHouses(gid) {
    houseLayer.clearLayers();
    let cursor = null;
    for (let page = 0; page < MAX_HOUSE_PAGES; page++) {
      const res = await api(`/grids/${encodeURIComponent(gid)}/houses${query({ limit: 1000, cursor })}`);
      for (const house of res.houses) {
        if (!house.house_code) continue;
        const [lon, lat] = house.location.coordinates;
        L.circleMarker([lat, lon], { renderer: houseRenderer, radius: 4, weight: 1, color: "#1f3a93",
          fillColor: "#fff", fillOpacity: 0.9 })
          .bindTooltip(house.address || house.house_code)
          .on("click", (ev) => {
            L.DomEvent.stop(ev);
            openHouse(house.house_code);
          })
          .addTo(houseLayer);
      }
      cursor = res.next_cursor;
      if (!cursor) break;
    }
  }

  // ---------------------------------------------------------------- houses
  async function search(q) {
    clear(results);
    const compact = q.replace(/[\s-]/g, "").toUpperCase();
    if (CODE_RE.test(compact)) {
      await openHouse(compact);
      return;
    }
    try {
      const res = await api(`/search/houses${query({ q, limit: 20 })}`);
      if (!res.houses.length) {
        results.append(h("p", { class: "muted", i18n: "police.noMatches", i18nArgs: { q } }));
        return;
      }
      const ul = h("ul", { class: "hits" });
      for (const hit of res.houses) {
        ul.append(h("li", {}, h("button", { type: "button", class: "link", onclick: () => openHouse(hit.house_code) },
          h("span", { class: "code" }, displayCode(hit.house_code)), " ", hit.address || "")));
      }
      results.append(h("p", { class: "muted", i18n: "police.matches", i18nArgs: { n: res.count } }), ul);
      if (res.houses.length === 1) await openHouse(res.houses[0].house_code);
    } catch (err) {
      results.append(errorBox(err));
    }
  }

  async function openHouse(code) {
    tab.select("house");
    clear(detail).append(h("p", { class: "muted", i18n: "common.loading" }));
    let residents;
    let rental;
    try {
      [residents, rental] = await Promise.all([
        api(`/houses/${encodeURIComponent(code)}/residents`),
        api(`/houses/${encodeURIComponent(code)}/rental`),
      ]);
    } catch (err) {
      clear(detail).append(errorBox(err, err.status === 404 ? "police.notFound" : "common.error"));
      return;
    }
    s.house = residents.house.house_code;
    renderHouse(residents, rental.rental);
    const [lon, lat] = residents.house.location.coordinates;
    focusLayer.clearLayers();
    L.circleMarker([lat, lon], { radius: 11, color: "#b00020", weight: 3, fill: false, interactive: false }).addTo(focusLayer);
    map.panTo([lat, lon]);
    if (residents.house.grid && residents.house.grid.grid_id !== s.selectedGrid && s.grids.has(residents.house.grid.grid_id)) {
      selectGrid(residents.house.grid.grid_id, { fit: false });
    }
  }

  function renderHouse(res, rental) {
    const house = res.house;
    const dl = h("dl", { class: "facts" },
      h("dt", { i18n: "house.address" }), h("dd", {}, house.address || "–"),
      h("dt", { i18n: "house.grid" }), h("dd", {}, house.grid ? house.grid.grid_id : "–"),
      h("dt", { i18n: "house.community" }), h("dd", {}, house.community_code || "–"),
      h("dt", { i18n: "house.rentalClass" }),
      h("dd", { id: "rental-class" }, rental
        ? h("span", { class: `tag class-${rental.rental_class}`, i18n: `class.${rental.rental_class}` })
        : h("span", { class: "muted", i18n: "house.notLet" })),
    );
    if (rental) {
      dl.append(
        h("dt", { i18n: "house.tenants" }), h("dd", {}, String(rental.tenants)),
        h("dt", { i18n: "house.landlord" }), h("dd", { class: "mono" }, rental.landlord_id_number || "–"),
        h("dt", { i18n: "house.nextDue" }),
        h("dd", { id: "next-due" }, rental.next_due_on || h("span", { i18n: "house.noSchedule" }),
          rental.overdue ? h("span", { class: "badge overdue", i18n: "insp.overdue" }) : null,
          " ", h("span", { class: "muted", i18n: `inspector.${rental.inspector}` })),
        h("dt", { i18n: "house.lastInspected" }), h("dd", {}, rental.last_inspected_on || "–"),
      );
    }
    const people = table([
      { key: "name", i18n: "person.name", header: true, render: (p) => h("span", { class: "nowrap" }, p.name,
        " ", h("span", { class: "muted small", i18n: `sex.${p.sex}` })) },
      { key: "id_number", i18n: "person.idNumber", render: (p) => h("span", { class: "mono nowrap" }, p.id_number) },
      { key: "phone", i18n: "person.phone", render: (p) => h("span", { class: "mono nowrap" }, p.phone || "–") },
      { key: "person_class", i18n: "person.class", render: (p) => h("span", { class: "nowrap" },
        h("span", { class: `tag class-${p.person_class}`, i18n: `class.${p.person_class}` }),
        p.floating ? h("span", { class: "tag", i18n: "person.floating" }) : null) },
      { key: "arrived_on", i18n: "person.arrived", render: (p) => h("span", { class: "nowrap" }, p.arrived_on) },
    ], res.residents, { captionKey: "house.residents", captionArgs: { n: res.count }, empty: "house.nobody" });
    people.id = "residents-table";
    people.classList.add("compact");
    put(detail,
      h("h3", { class: "code", id: "house-title" }, house.display_code),
      dl,
      res.masked ? h("p", { class: "muted small", i18n: "house.masked" }) : null,
      people,
      rental ? h("button", { type: "button", class: "btn", i18n: "police.recordThis", onclick: () => prefill(house.house_code) }) : null,
      rental && rental.inspections.length ? table([
        { key: "inspected_on", i18n: "insp.inspectedOn" },
        { key: "inspector", i18n: "police.inspector" },
        { key: "outcome", i18n: "police.outcome" },
      ], rental.inspections, { captionKey: "house.recentInspections" }) : null,
    );
  }

  // ---------------------------------------------------------------- inspections
  async function loadList() {
    const gid = gridSelect.value;
    if (!gid) return;
    // Keep the old list on screen while the new one loads (no flicker after recording).
    if (!list.firstChild) list.append(h("p", { class: "muted", i18n: "common.loading" }));
    list.setAttribute("aria-busy", "true");
    try {
      const res = await api(`/grids/${encodeURIComponent(gid)}/inspections${query({ week: weekInput.value })}`);
      const tbl = table([
        { key: "due_on", i18n: "insp.status", render: (r) => h("span", { class: "nowrap" }, r.overdue
          ? h("span", { class: "badge overdue", i18n: "insp.overdueDays", i18nArgs: { n: r.days_overdue } })
          : h("span", { class: "badge due", i18n: "insp.dueOn" }),
          h("br"), h("span", { class: "muted small" }, r.due_on)) },
        { key: "house_code", i18n: "insp.house", render: (r) => h("div", {},
          h("button", { type: "button", class: "link code", onclick: () => openHouse(r.house_code) }, displayCode(r.house_code)),
          h("div", { class: "small muted" }, r.address || "")) },
        { key: "rental_class", i18n: "insp.classBy", render: (r) => h("span", { class: "nowrap" },
          h("span", { class: `tag class-${r.rental_class}`, i18n: `class.${r.rental_class}` }), h("br"),
          h("span", { class: "muted small", i18n: `inspector.${r.inspector}` })) },
        { key: "act", i18n: "common.action", render: (r) => h("button", { type: "button", class: "btn small",
          i18n: "police.record", dataset: { code: r.house_code }, onclick: () => prefill(r.house_code) }) },
      ], res.rows, {
        captionKey: "insp.caption",
        captionArgs: { grid: res.grid_id, start: res.week_start, end: res.week_end, n: res.count, overdue: res.overdue },
        rowClass: (r) => (r.overdue ? "overdue" : null), empty: "insp.none",
      });
      tbl.id = "insp-table";
      clear(list).append(tbl);
    } catch (err) {
      clear(list).append(errorBox(err));
    } finally {
      list.removeAttribute("aria-busy");
    }
  }

  function prefill(code) {
    tab.select("inspections");
    recCode.value = displayCode(code);
    recDate.value = today();
    clear(recResult);
    recOutcome.focus();
  }

  async function record() {
    clear(recResult);
    try {
      const res = await api("/inspections", { method: "POST", body: {
        house_code: recCode.value.trim(), inspected_on: recDate.value,
        inspector: recInspector.value.trim(), outcome: recOutcome.value.trim(),
      } });
      recResult.append(h("p", { class: "ok", i18n: res.next_due_on ? "police.recorded" : "police.recordedNoSchedule",
        i18nArgs: { code: displayCode(res.house_code), next: res.next_due_on } }));
      status("police.recordedShort");
      recOutcome.value = "";
      await loadList();
      if (s.house === res.house_code) await openHouse(res.house_code);
    } catch (err) {
      recResult.append(errorBox(err));
    }
  }

  // ---------------------------------------------------------------- events
  searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    search(searchInput.value.trim());
  });
  listForm.addEventListener("submit", (e) => {
    e.preventDefault();
    selectGrid(gridSelect.value);
  });
  gridSelect.addEventListener("change", () => selectGrid(gridSelect.value));
  recordForm.addEventListener("submit", (e) => {
    e.preventDefault();
    record();
  });

  const ready = loadArea().catch((err) => {
    panel.prepend(errorBox(err));
  });
  return {
    ready,
    shown() {
      refreshSize(map);
    },
    map,
    state: s,
    houses: houseLayer,
  };
}
