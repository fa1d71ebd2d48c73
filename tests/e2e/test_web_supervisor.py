"""Supervisors in the browser: drill down city → district → street → community, export CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

import httpx
from playwright.sync_api import expect

if TYPE_CHECKING:
    from webapp import WebSession

pytest_plugins = ["webapp"]


def _api(web: WebSession, path: str, **params: Any) -> Any:
    response = httpx.get(web.city.url + path, params=params, headers={
        "Authorization": f"Bearer {web.city.tokens['supervisor']}"}, timeout=30)
    response.raise_for_status()
    return response.json()


def test_supervisor_drills_down_to_a_street_and_exports_csv(web: WebSession) -> None:
    page, city = web.page, web.city
    web.sign_in("supervisor")
    table = page.locator("#sup-data")
    expect(table.locator("tbody tr")).to_have_count(20)  # the districts
    for target in ("90.0 %", "95.0 %", "70.0 %"):
        expect(table.locator("thead")).to_contain_text(target)
    total = _api(web, "/workload", level="city")["rows"][0]
    foot = table.locator("tfoot tr")
    expect(foot).to_contain_text("合计")
    expect(foot).to_contain_text(f"{total['floating_residents']:,}")
    # Both maps of the whole city are beside the table, drawn offline.
    expect(page.frame_locator("#map-inspection").locator(".leaflet-container")).to_be_visible()
    expect(page.locator("#supmaps-tab-staffing")).to_be_visible()

    street = city.police_area
    district = street[:6]
    districts = {r["area_code"]: r for r in _api(web, "/workload", level="district")["rows"]}
    table.locator(f"tr[data-code='{district}'] button.drill").click()
    crumbs = page.locator("#sup-crumbs li")
    expect(crumbs).to_have_count(2)
    expect(crumbs.nth(1)).to_have_text(districts[district]["name"])
    streets = _api(web, "/workload", level="street", parent=district)["rows"]
    expect(table.locator("tbody tr")).to_have_count(len(streets))
    table.locator(f"tr[data-code='{street}'] button.drill").click()
    expect(crumbs).to_have_count(3)
    name = next(r["name"] for r in streets if r["area_code"] == street)
    expect(crumbs.nth(2)).to_have_text(name)
    communities = _api(web, "/workload", level="community", parent=street)["rows"]
    expect(table.locator("tbody tr")).to_have_count(len(communities))
    floating = sum(r["floating_residents"] for r in communities)
    expect(table.locator("tfoot tr")).to_contain_text(f"{floating:,}")
    # The maps follow the drill-down: the street's map.
    expect(page.frame_locator("#map-inspection").locator("body")).to_contain_text("1 grid")
    web.shot("web-supervisor-street")

    with page.expect_download() as download:
        page.locator("#sup-export").click()
    saved = download.value
    assert saved.suggested_filename == f"gridmgr-community-{street}-ratio500.csv"
    raw = saved.path().read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets read the Chinese names
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(communities)
    by_code = {r["area_code"]: r for r in communities}
    for row in rows:
        want = by_code[row["area_code"]]
        assert row["area_code"].startswith(street)
        assert row["name"] == want["name"]
        assert int(row["floating_residents"]) == want["floating_residents"]
        assert int(row["co_managers_needed"]) == want["co_managers_needed"]
        assert int(row["co_managers_assigned"]) == want["co_managers_assigned"]
        assert row["co_manager_ratio"] == "500"
        assert float(row["floating_registration_rate_target"]) == 0.9

    # One level further: the grids of a community, at the specialist ratio.
    page.locator("#sup-ratio").select_option("1000")
    expect(table.locator("caption")).to_contain_text("1000")
    community = communities[0]["area_code"]
    table.locator(f"tr[data-code='{community}'] button.drill").click()
    expect(crumbs).to_have_count(4)
    grids = _api(web, "/workload", level="grid", parent=community)["rows"]
    expect(table.locator("tbody tr")).to_have_count(len(grids))
    expect(table.locator("tbody")).to_contain_text(grids[0]["grid_id"])
    crumbs.nth(0).locator("button").click()  # back to the city
    expect(table.locator("tbody tr")).to_have_count(20)

    # English from the one catalogue, without reloading.
    page.locator("#lang-select").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#sup-panel h2")).to_have_text("Co-manager staffing and registration KPIs")
    expect(table.locator("thead")).to_contain_text("Floating residents")
    expect(crumbs.nth(0)).to_have_text("City")
    web.shot("web-supervisor-en")
    page.locator("#lang-select").select_option("zh")
    expect(page.locator("#sup-panel h2")).to_have_text("协管员配备与登记指标")
