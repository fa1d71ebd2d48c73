/*
 * gridmgr offline map renderer (needs Leaflet 1.9, nothing else; no network).
 *
 * layers/ in gridmgr writes one JSON object per map: compact, delta-encoded integer
 * coordinates (vertices on a 1e-5 degree grid), columnar grid attributes, the colour
 * class of every grid and the legend. This file turns it into Leaflet layers drawn on
 * canvas: the district base, the grids (tooltip and popup per grid), boundary lines of
 * districts, streets and communities on top, a title and the legend.
 */
(function (global) {
  "use strict";

  function decodeRings(pack) {
    // -> array of rings, each an array of L.LatLng (rings are open: Leaflet closes them)
    var xy = pack.xy, s = pack.scale, counts = pack.rings;
    var rings = new Array(counts.length), x = 0, y = 0, k = 0;
    for (var r = 0; r < counts.length; r++) {
      var n = counts[r], ring = new Array(n);
      for (var i = 0; i < n; i++) {
        x += xy[k++];
        y += xy[k++];
        ring[i] = new L.LatLng(y / s, x / s);
      }
      rings[r] = ring;
    }
    return rings;
  }

  function decodePolygons(pack) {
    // -> one entry per feature: null (nothing to draw) or Leaflet polygon latlngs
    var rings = decodeRings(pack), parts = pack.parts, feats = pack.feats;
    var out = new Array(feats.length), r = 0, p = 0;
    for (var f = 0; f < feats.length; f++) {
      var polys = [];
      for (var j = 0; j < feats[f]; j++) {
        polys.push(rings.slice(r, r + parts[p]));
        r += parts[p];
        p++;
      }
      out[f] = polys.length === 0 ? null : (polys.length === 1 ? polys[0] : polys);
    }
    return out;
  }

  function fmt(v, digits) {
    if (v === null || v === undefined) { return "–"; }
    var d = digits === undefined ? 1 : digits;
    var t = Math.abs(v - Math.round(v)) < 1e-9 ? String(Math.round(v)) : v.toFixed(d);
    return t.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function tooltipHtml(data, i) {
    var g = data.grids, t = data.tables, rows = [];
    rows.push("<b>Grid " + g.id[i] + "</b>");
    if (g.community[i] >= 0) { rows.push("Community: " + t.community[g.community[i]]); }
    rows.push("Tier: <b>" + t.tier[g.tier[i]] + "</b>" +
      (g.reasons[i] >= 0 ? "<br><span class=\"gm-reasons\">" + t.reasons[g.reasons[i]] + "</span>" : ""));
    rows.push("Houses: " + fmt(g.houses[i]) + " (rented " + fmt(g.rental[i]) + ")");
    rows.push("Floating residents: " + fmt(g.floating[i]));
    rows.push("Inspections due / month: " + fmt(g.inspections[i]) +
      " (police " + fmt(g.police[i]) + ")");
    var gap = g.gap[i], gapText = gap === null ? "" :
      (gap > 0 ? ", <b>short " + fmt(gap) + "</b>" : (gap < 0 ? ", surplus " + fmt(-gap) : ", balanced"));
    rows.push("Co-managers: " + fmt(g.needed[i]) + " needed, " + fmt(g.assigned[i]) + " assigned" + gapText);
    return "<div class=\"gm-tip\">" + rows.join("<br>") + "</div>";
  }

  function pane(map, name, zIndex, interactive) {
    var p = map.getPane(name) || map.createPane(name);
    p.style.zIndex = String(zIndex);
    if (!interactive) { p.style.pointerEvents = "none"; }
    return L.canvas({ pane: name, padding: 0.3 });
  }

  function addControl(map, position, className, html) {
    var Box = L.Control.extend({
      onAdd: function () {
        var div = L.DomUtil.create("div", className);
        div.innerHTML = html;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      }
    });
    return new Box({ position: position }).addTo(map);
  }

  function mark(name) {
    if (global.performance && global.performance.mark) { global.performance.mark(name); }
  }

  function render(map, data) {
    mark("gridmgr-start");
    if (typeof data === "string") {  // the id of a <script type="application/json">
      data = JSON.parse(document.getElementById(data).textContent);
      mark("gridmgr-parsed");
    }
    var overlays = {}, st = data.style;
    if (map.attributionControl) { map.attributionControl.setPrefix("Leaflet"); }  // no outside link
    // frame first: layers added afterwards are projected once, at the final zoom
    map.fitBounds(data.bounds, { padding: [12, 12], animate: false });
    if (data.base) {
      var baseLatLngs = decodePolygons(data.base).filter(function (x) { return x !== null; });
      if (baseLatLngs.length) {
        L.polygon(baseLatLngs, {
          renderer: pane(map, "gmBase", 350, false), interactive: false, noClip: true,
          stroke: false, fillColor: st.baseFill, fillOpacity: st.baseOpacity
        }).addTo(map);
      }
    }
    var shapes = decodePolygons(data.geometry), classes = data.grids.cls;
    mark("gridmgr-decoded");
    var emph = data.grids.emph, layers = [], gridRenderer = pane(map, "gmGrids", 400, true);
    for (var i = 0; i < shapes.length; i++) {
      if (shapes[i] === null) { continue; }
      var c = classes[i], strong = emph && emph[i];
      var layer = L.polygon(shapes[i], {
        renderer: gridRenderer,
        noClip: true,  // the canvas clips anyway; Leaflet's per-ring clipping costs more
        fillColor: c >= 0 ? st.palette[c] : st.noData,
        fillOpacity: st.fillOpacity,
        color: strong ? st.emphColor : st.gridLine,
        weight: strong ? st.emphWeight : st.gridWeight,
        opacity: 1
      });
      layer.gmIndex = i;
      layers.push(layer);
    }
    var grids = L.featureGroup(layers);
    var content = function (layer) { return tooltipHtml(data, layer.gmIndex); };
    grids.bindTooltip(content, { sticky: true, direction: "top", opacity: 0.95 });
    grids.bindPopup(content, { maxWidth: 360 });
    grids.on("mouseover", function (e) { e.layer.setStyle({ weight: st.hoverWeight, color: st.hoverColor }); });
    grids.on("mouseout", function (e) {
      var strong = emph && emph[e.layer.gmIndex];
      e.layer.setStyle({
        weight: strong ? st.emphWeight : st.gridWeight,
        color: strong ? st.emphColor : st.gridLine
      });
    });
    mark("gridmgr-layers");
    grids.addTo(map);
    overlays[data.labels.grids] = grids;

    var lineRenderer = pane(map, "gmLines", 450, false);
    data.lines.forEach(function (spec) {
      if (!spec.pack.rings.length) { return; }
      // decoded on first display: fine boundaries wait until the map is zoomed in
      var group = L.layerGroup(), built = false;
      group.on("add", function () {
        if (built) { return; }
        built = true;
        group.addLayer(L.polyline(decodeRings(spec.pack), {
          renderer: lineRenderer, interactive: false, noClip: true, color: spec.color,
          weight: spec.weight, opacity: spec.opacity
        }));
      });
      overlays[spec.label] = group;
      if (!spec.minZoom) {
        group.addTo(map);
        return;
      }
      var automatic = false;
      var onZoom = function () {
        automatic = true;
        if (map.getZoom() >= spec.minZoom) { group.addTo(map); } else { group.remove(); }
        automatic = false;
      };
      map.on("zoomend", onZoom);
      // ticking it on or off in the layer control overrides the zoom rule
      map.on("overlayadd overlayremove", function (e) {
        if (e.layer === group && !automatic) { map.off("zoomend", onZoom); }
      });
      onZoom();
    });
    L.control.layers(null, overlays, { collapsed: true, position: "topright" }).addTo(map);
    addControl(map, "bottomright", "gridmgr-legend", data.legend);
    if (data.title) {
      var title = L.DomUtil.create("div", "gridmgr-title", map.getContainer());
      title.innerHTML = data.title;
    }
    mark("gridmgr-added");
    // signal a finished first paint (two frames: the canvas redraw happens on the next one)
    var root = document.documentElement;
    root.setAttribute("data-gridmgr-grids", String(layers.length));
    global.requestAnimationFrame(function () {
      global.requestAnimationFrame(function () {
        global.gridmgrPaintedAt = global.performance.now();
        root.setAttribute("data-gridmgr-painted", "1");
      });
    });
    map.gridmgr = { grids: grids, overlays: overlays };
    return map.gridmgr;
  }

  global.GridmgrMap = { render: render, decodePolygons: decodePolygons, decodeRings: decodeRings };
})(window);
