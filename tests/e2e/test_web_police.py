"""Police in the browser: residents of a house by code, the week's list, recording a visit."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from playwright.sync_api import expect
from sqlalchemy import text

from gridmgr.store.engine import make_engine

if TYPE_CHECKING:
    from webapp import WebSession

pytest_plugins = ["webapp"]


def display(code: str) -> str:
    """The hyphenated form officers type."""
    return f"{code[:12]}-{code[12:16]}-{code[16:18]}-{code[18:22]}-{code[22:]}"


def test_police_finds_residents_by_code_and_records_an_inspection(web: WebSession) -> None:
    page, city = web.page, web.city
    page.goto(city.url + "/")
    expect(page.locator("#signin-form")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#signin-form h2")).to_have_text("登录")
    web.shot("web-signin")

    web.sign_in("police")
    expect(page.locator("#police-panel")).to_be_visible()
    expect(page.locator("#whoami")).to_contain_text(city.police_area)
    # The officer's area is one street with one grid; its houses are on the map.
    expect(page.locator("#insp-grid option")).to_have_count(1)
    expect(page.locator("#police-map path.leaflet-interactive")).to_have_count(1)

    # 以房找人: residents of a house by its code, unmasked for the area police.
    code = city.house_code
    page.locator("#house-query").fill(display(code))
    page.locator("#house-search button[type=submit]").click()
    expect(page.locator("#house-title")).to_have_text(display(code))
    rows = page.locator("#residents-table tbody tr")
    expect(rows).to_have_count(len(city.residents))
    for person in city.residents:
        row = rows.filter(has_text=person["name"])
        expect(row).to_have_count(1)
        expect(row).to_contain_text(person["id_number"])
    expect(page.locator("#rental-class")).to_have_text("重点")
    expect(page.locator("#next-due")).to_contain_text("已逾期")
    web.shot("web-police-house")

    # Clicking the house's building on the map opens a house there (the units of a
    # building share its point, so any of them may come up).
    # Opening the house pans the map (animated); take the point once the map is still,
    # or a slow machine clicks where the house was a moment ago.
    point = page.evaluate("""async ([lat, lon]) => {
        const map = window.gridmgrApp.views.police.map;
        const at = () => {
            const box = map.getContainer().getBoundingClientRect();
            const p = map.latLngToContainerPoint([lat, lon]);
            return [p.x + box.left, p.y + box.top];
        };
        let last = at();
        for (let i = 0; i < 50; i++) {
            await new Promise((r) => setTimeout(r, 100));
            const now = at();
            if (now[0] === last[0] && now[1] === last[1]) return now;
            last = now;
        }
        return last;
    }""", [city.house_lonlat[1], city.house_lonlat[0]])
    page.locator("#house-title").evaluate("el => el.remove()")
    page.mouse.click(*point)
    expect(page.locator("#house-title")).to_contain_text(display(code)[:17])

    # Search by address finds the same house among others.
    page.locator("#house-query").fill("松林街")
    page.locator("#house-search button[type=submit]").click()
    expect(page.locator("ul.hits li").first).to_be_visible()
    expect(page.locator("ul.hits")).to_contain_text("松林街")

    # This week's list: overdue first, the house among them; record a visit.
    page.locator("#police-tab-inspections").click()
    table = page.locator("#insp-table")
    expect(table).to_be_visible()
    flags = [("overdue" in (c or "")) for c in
             table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.className)")]
    assert flags and flags[0], "the list starts with overdue rentals"
    assert flags == sorted(flags, reverse=True), "overdue rentals come before the rest"
    listed = table.locator("tbody tr").count()
    record = table.locator(f"button[data-code='{code}']")
    expect(record).to_have_count(1)
    record.click()
    expect(page.locator("#rec-code")).to_have_value(display(code))
    expect(page.locator("#rec-inspector")).to_have_value("民警甲")
    page.locator("#rec-outcome").fill("正常")
    page.locator("#record-form button[type=submit]").click()
    next_due = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    expect(page.locator("#record-result")).to_contain_text(next_due)
    # The list reloads without the house: its next visit is after this week.
    expect(table.locator("tbody tr")).to_have_count(listed - 1)
    expect(table.locator(f"button[data-code='{code}']")).to_have_count(0)
    expect(page.locator("#insp-list")).not_to_have_attribute("aria-busy", "true")
    web.shot("web-police-inspections")

    engine = make_engine(city.db_url)
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT i.inspector, i.outcome, i.inspected_on, r.next_due_on FROM inspection i "
            "JOIN rental_record r ON r.id = i.rental_id JOIN house h ON h.id = r.house_id "
            "WHERE h.house_code = :c"), {"c": code}).one()
    engine.dispose()
    assert (row[0], row[1]) == ("民警甲", "正常")
    assert str(row[2])[:10] == dt.date.today().isoformat() and str(row[3])[:10] == next_due

    # A house outside the officer's area reads as not found.
    page.locator("#police-tab-house").click()
    page.locator("#house-query").fill(city.foreign_house)
    page.locator("#house-search button[type=submit]").click()
    expect(page.locator("#house-detail [role=alert]")).to_contain_text("辖区内没有该房屋")


def test_police_cannot_reach_the_planner_view(web: WebSession) -> None:
    page, city = web.page, web.city
    web.sign_in("police")
    expect(page.locator("#nav")).to_be_hidden()  # one view only: no navigation to others
    page.goto(city.url + "/#/planner")
    expect(page.locator("#view-denied")).to_be_visible()
    expect(page.locator("#denied-text")).to_contain_text("社区民警")
    expect(page.locator("#planner-panel")).to_have_count(0)
    expect(page.locator("#view-supervisor")).to_be_hidden()
    web.shot("web-police-denied")
    # The API refuses too, whatever the page does.
    statuses = page.evaluate("""async (token) => {
        const h = {Authorization: `Bearer ${token}`, "Content-Type": "application/json"};
        const get = (u) => fetch(u, {headers: h}).then((r) => r.status);
        const post = (u, body) => fetch(u, {method: "POST", headers: h, body: JSON.stringify(body)})
            .then((r) => r.status);
        return [await get("/plans"), await get("/plans/base/grids"), await get("/plans/base/diff"),
                await post("/plans", {name: "sneaky"})];
    }""", city.tokens["police"])
    assert statuses == [403, 403, 403, 403]
    page.locator("#denied-home").click()
    expect(page.locator("#police-panel")).to_be_visible()
