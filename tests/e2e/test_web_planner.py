"""Planners in the browser: split a grid by drawing a line, see the diff, undo; rule errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import expect
from sqlalchemy import text

from gridmgr.store.engine import make_engine

if TYPE_CHECKING:
    from webapp import WebSession

pytest_plugins = ["webapp"]


def _houses_in(db_url: str, grid_id: str) -> int:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(text(
            "SELECT count(*) FROM house_grid hg JOIN grid g ON g.id = hg.grid_pk "
            "JOIN boundary_plan p ON p.id = g.plan_id "
            "WHERE p.status = 'adopted' AND g.grid_id = :g"), {"g": grid_id}).scalar_one()
    engine.dispose()
    return int(n)


def _numbers(page: object, selector: str, column: int) -> list[float]:
    cells = page.locator(f"{selector} tbody tr td:nth-of-type({column})")  # type: ignore[attr-defined]
    return [float(t.replace(",", "")) for t in cells.all_inner_texts()]


def test_planner_splits_a_grid_sees_the_diff_and_undoes(web: WebSession) -> None:
    page, city = web.page, web.city
    web.sign_in("planner")
    grids = page.locator("#grid-list input[type=checkbox]")
    expect(grids).to_have_count(20)
    expect(page.locator("#plan-select")).to_contain_text("base")
    expect(page.locator("#adopt")).to_be_disabled()  # adopting needs a supervisor or admin

    page.locator("#new-plan-name").fill("演练方案")
    page.locator("#new-plan button[type=submit]").click()
    expect(page.locator("#plan-select")).to_have_value("演练方案")
    expect(page.locator("#plan-status")).to_have_text("草案")

    # Select the grid in the list (keyboard-reachable) and draw a line across it.
    gid = city.split_grid
    page.locator(f"#grid-list input[value='{gid}']").check()
    expect(page.locator("#tool-merge")).to_be_disabled()
    page.locator("#tool-split").click()
    expect(page.locator("#draw-hint")).not_to_be_empty()
    (x0, y0), (x1, y1) = city.split_line
    points = page.evaluate("""([a, b]) => {
        const map = window.gridmgrApp.views.planner.map;
        const box = map.getContainer().getBoundingClientRect();
        return [a, b].map((ll) => {
            const p = map.latLngToContainerPoint(ll);
            return [p.x + box.left, p.y + box.top];
        });
    }""", [[y0, x0], [y1, x1]])
    page.mouse.click(*points[0])
    page.mouse.click(*points[1])
    page.mouse.click(*points[1])  # clicking the last vertex again finishes the line

    summary = page.locator("#edit-summary")
    expect(summary).to_contain_text("拆分")
    expect(page.locator("#edit-before tbody tr")).to_have_count(1)
    expect(page.locator("#edit-before tbody tr")).to_contain_text(gid)
    after = page.locator("#edit-after tbody tr")
    expect(after).to_have_count(2)
    new_ids = [t.strip() for t in page.locator("#edit-after tbody th").all_inner_texts()]
    community = gid.rsplit("-", 1)[0]
    assert all(g.startswith(community + "-") and g != gid for g in new_ids)
    # The pieces share the old grid's floating residents and houses exactly.
    assert sum(_numbers(page, "#edit-after", 1)) == sum(_numbers(page, "#edit-before", 1))
    assert sum(_numbers(page, "#edit-after", 2)) == sum(_numbers(page, "#edit-before", 2))
    moved = _houses_in(city.db_url, gid)
    assert moved > 0
    expect(page.locator("#diff-summary")).to_contain_text(f"{moved} 户房屋改变网格")
    expect(grids).to_have_count(21)
    web.shot("web-planner-split")

    page.locator("#planner-tab-compare").click()
    expect(page.locator("#diff-before tbody tr")).to_have_count(1)
    expect(page.locator("#diff-after tbody tr")).to_have_count(2)
    page.locator("#planner-tab-edit").click()

    page.locator("#tool-undo").click()
    expect(summary).to_contain_text("撤销")
    expect(page.locator("#edit-after tbody tr")).to_have_count(1)
    expect(page.locator("#edit-after tbody tr")).to_contain_text(gid)
    expect(grids).to_have_count(20)
    expect(page.locator(f"#grid-list input[value='{gid}']")).to_have_count(1)
    expect(page.locator("#diff-summary")).to_contain_text("0 户房屋改变网格")
    web.shot("web-planner-undo")
    diff = page.evaluate("""async ([name, token]) => (await fetch(
        `/plans/${encodeURIComponent(name)}/diff`, {headers: {Authorization: `Bearer ${token}`}})
        ).json()""", ["演练方案", city.tokens["planner"]])
    assert diff["houses_moved"] == 0 and diff["grids"]["added"] == []

    # A lock moves nothing, but its grid's workload still shows before and after.
    for box in page.locator("#grid-list input:checked").all():
        box.uncheck()
    page.locator(f"#grid-list input[value='{gid}']").check()
    page.locator("#tool-lock").click()
    expect(page.locator("#edit-before tbody tr")).to_have_count(1)
    expect(page.locator("#edit-after tbody tr")).to_contain_text(gid)


def test_rejected_edit_points_at_the_grids(web: WebSession) -> None:
    page = web.page
    web.sign_in("planner")
    page.locator("#new-plan-name").fill("draft-errors")
    page.locator("#new-plan button[type=submit]").click()
    expect(page.locator("#plan-select")).to_have_value("draft-errors")
    boxes = page.locator("#grid-list input[type=checkbox]")
    expect(boxes).to_have_count(20)
    ids = boxes.evaluate_all("boxes => boxes.map(b => b.value)")
    a, b = ids[0], ids[1]  # two grids of different communities: a merge must be refused
    page.locator(f"#grid-list input[value='{a}']").check()
    page.locator(f"#grid-list input[value='{b}']").check()
    page.locator("#tool-merge").click()
    alert = page.locator("#plan-error [role=alert]")
    expect(alert).to_contain_text("different communities")
    for gid in (a, b):
        expect(alert.locator("button", has_text=gid)).to_have_count(1)
        expect(page.locator("#grid-list .pick.offending", has_text=gid)).to_have_count(1)
    expect(page.locator("#grid-list input[type=checkbox]")).to_have_count(20)
    web.shot("web-planner-rejected")


def test_admin_splits_by_typed_line_and_adopts_with_confirmation(web: WebSession) -> None:
    page, city = web.page, web.city
    web.sign_in("admin")
    page.goto(city.url + "/#/planner")
    page.locator("#new-plan-name").fill("启用方案")
    page.locator("#new-plan button[type=submit]").click()
    expect(page.locator("#plan-select")).to_have_value("启用方案")
    boxes = page.locator("#grid-list input[type=checkbox]")
    expect(boxes).to_have_count(20)

    # The keyboard path: a line typed as WKT instead of drawn.
    gid = city.split_grid
    page.locator(f"#grid-list input[value='{gid}']").check()
    page.locator("details.wkt summary").click()
    (x0, y0), (x1, y1) = city.split_line
    page.locator("#wkt").fill(f"LINESTRING ({x0} {y0}, {x1} {y1})")
    page.locator("#wkt-split").click()
    expect(page.locator("#edit-summary")).to_contain_text("拆分")
    expect(page.locator("#edit-after tbody tr")).to_have_count(2)
    new_ids = [t.strip() for t in page.locator("#edit-after tbody th").all_inner_texts()]

    page.locator("#planner-tab-rebalance").click()
    adopt = page.locator("#adopt")
    dialog = page.locator("#confirm-dialog")
    adopt.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("启用方案")
    expect(dialog).to_contain_text("户房屋改变网格")
    page.keyboard.press("Escape")  # cancelled: nothing happens
    expect(dialog).to_be_hidden()
    expect(page.locator("#plan-status")).to_have_text("草案")

    adopt.click()
    expect(dialog).to_be_visible()
    web.shot("web-planner-adopt")
    expect(page.locator("#confirm-dialog button[value=cancel]")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#plan-status")).to_have_text("现行")
    expect(adopt).to_be_disabled()
    statuses = page.evaluate("""async ([token, ids]) => Promise.all(ids.map((g) => fetch(
        `/grids/${g}`, {headers: {Authorization: `Bearer ${token}`}}).then((r) => r.status)))""",
                             [city.tokens["admin"], [gid, *new_ids]])
    assert statuses == [404, 200, 200]  # the split is in force now


def test_planner_discards_a_draft_with_confirmation(web: WebSession) -> None:
    page, city = web.page, web.city
    web.sign_in("planner")
    discard = page.locator("#discard")
    expect(page.locator("#plan-select")).to_contain_text("base")
    page.locator("#new-plan-name").fill("弃用草案")
    page.locator("#new-plan button[type=submit]").click()
    expect(page.locator("#plan-select")).to_have_value("弃用草案")
    expect(discard).to_be_enabled()

    dialog = page.locator("#confirm-dialog")
    discard.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("弃用草案")
    page.keyboard.press("Escape")  # cancelled: the draft stays
    expect(dialog).to_be_hidden()
    expect(page.locator("#plan-status")).to_have_text("草案")

    discard.click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#plan-select option[value='弃用草案']")).to_contain_text("已放弃")
    expect(page.locator("#plan-select")).not_to_have_value("弃用草案")
    engine = make_engine(city.db_url)
    with engine.connect() as conn:
        status, links = conn.execute(text(
            "SELECT p.status, (SELECT count(*) FROM house_grid hg WHERE hg.plan_id = p.id) "
            "FROM boundary_plan p WHERE p.name = '弃用草案'")).one()
    engine.dispose()
    assert (status, links) == ("discarded", 0)
