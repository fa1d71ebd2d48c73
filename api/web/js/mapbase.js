// Leaflet maps with no tile layer: the intranet has no tile server by default, so grids
// and area outlines are the map. Leaflet 1.9.4 comes from /static/leaflet (basemaps/).

import { TIER_COLOURS } from "./ui.js";

const L = window.L;

export function makeMap(container, { label: ariaLabel } = {}) {
  const map = L.map(container, {
    zoomControl: true, attributionControl: false, preferCanvas: false,
    keyboard: true, zoomSnap: 0.25,
  });
  map.setView([30.66, 104.06], 11);
  L.control.scale({ imperial: false }).addTo(map);
  if (ariaLabel) container.setAttribute("aria-label", ariaLabel);
  container.setAttribute("role", "region");
  return map;
}

export function tierStyle(tier, { selected = false, locked = false, offending = false } = {}) {
  return {
    color: offending ? "#b00020" : selected ? "#1f3a93" : "#333",
    weight: offending ? 4 : selected ? 3.5 : 1.2,
    dashArray: locked ? "6 4" : null,
    fillColor: TIER_COLOURS[tier] || "#bbbbbb",
    fillOpacity: offending ? 0.55 : selected ? 0.5 : 0.3,
  };
}

const pendingFit = new WeakMap();

// Fit the map to a layer; a map whose view is hidden (no size) fits when shown again.
export function fitTo(map, layer, padding = 20) {
  let bounds;
  try {
    bounds = layer.getBounds();
  } catch {
    return; // an empty layer has no bounds
  }
  if (!bounds || !bounds.isValid()) return;
  const el = map.getContainer();
  if (!el.clientWidth || !el.clientHeight) {
    pendingFit.set(map, [bounds, padding]);
    return;
  }
  pendingFit.delete(map);
  map.fitBounds(bounds, { padding: [padding, padding], animate: false });
}

// Leaflet measures its container once; when a view is shown again, measure and fit anew.
export function refreshSize(map) {
  if (!map) return;
  requestAnimationFrame(() => {
    map.invalidateSize();
    const pending = pendingFit.get(map);
    if (pending) {
      pendingFit.delete(map);
      map.fitBounds(pending[0], { padding: [pending[1], pending[1]], animate: false });
    }
  });
}
