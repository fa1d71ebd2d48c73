"""Plan rules and edit geometry (pure): problems by grid, new vs inherited, split, merge."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from gridmgr.errors import BadInput
from gridmgr.plan_rules import (
    Grids,
    PlanRuleSettings,
    PlanRuleViolation,
    Problem,
    as_multipolygon,
    cells_of_points,
    cells_polygon,
    clean,
    merge_geometries,
    new_problems,
    polsby_popper,
    problems,
    reshape_grids,
    split_by_line,
    transfer,
)

# A community of about 1.9 km × 2.2 km near Chengdu, split into two grids at lon 104.01.
C = "510104001001"
COMM = box(104.0, 30.6, 104.02, 30.62)
W, E = box(104.0, 30.6, 104.01, 30.62), box(104.01, 30.6, 104.02, 30.62)
M = 1 / 111_000  # about a metre in degrees


def grids(*items: tuple[str, shapely.Geometry], community: str = C) -> Grids:
    return Grids.of([i for i, _ in items], [community] * len(items), [g for _, g in items])


def rules_of(found: list[Problem]) -> list[tuple[str, tuple[str, ...]]]:
    return [(p.rule, p.grids) for p in found]


def test_a_clean_coverage_has_no_problems() -> None:
    assert problems(grids(("A", W), ("B", E)), {C: COMM}) == []


def test_each_rule_names_its_grids() -> None:
    found = problems(grids(("A", box(104.0, 30.6, 104.011, 30.62)), ("B", E)), {C: COMM})
    assert rules_of(found) == [("overlap", ("A", "B"))]
    assert "overlap by" in str(found[0]) and found[0].area_m2 > 1000
    assert found[0].where is not None and 104.01 <= found[0].where[0] <= 104.011

    found = problems(grids(("A", box(104.0, 30.6, 104.009, 30.62)), ("B", E)), {C: COMM})
    assert rules_of(found) == [("gap", ("A", "B"))]
    assert "in no grid" in str(found[0]) and found[0].community == C

    found = problems(grids(("A", box(104.0, 30.6, 104.01, 30.63)), ("B", E)), {C: COMM})
    assert rules_of(found) == [("outside_community", ("A",))]
    assert "outside its community" in str(found[0])

    island = MultiPolygon([box(104.0, 30.6, 104.01, 30.61), box(104.0, 30.611, 104.01, 30.62)])
    rest = shapely.difference(COMM, island)
    found = problems(grids(("A", island), ("B", rest)), {C: COMM})
    assert rules_of(found) == [("not_contiguous", ("A",))]
    assert "not one piece" in str(found[0])

    bowtie = Polygon([(104.0, 30.6), (104.01, 30.62), (104.01, 30.6), (104.0, 30.62)])
    found = problems(grids(("A", bowtie), ("B", E)), {C: COMM}, focus=["A"])
    assert rules_of(found)[0] == ("invalid", ("A",)) and "not a valid polygon" in str(found[0])

    found = problems(Grids.of(["A", "B"], ["999", C], [W, E]), {C: COMM}, focus=["A"])
    assert rules_of(found) == [("unknown_community", ("A",))]

    found = problems(grids(("A", W), ("A", E)), {C: COMM})
    assert ("duplicate_grid_id", ("A",)) in rules_of(found)

    found = problems(grids(("A", box(104.0, 30.6, 104.00001, 30.60001)), ("B", E)), {C: COMM},
                     focus=["A"])
    assert rules_of(found)[0] == ("invalid", ("A",)) and "empty" in str(found[0])


def test_slivers_within_tolerance_are_not_problems() -> None:
    nudged = box(104.0, 30.6, 104.01 + 0.3 * M, 30.62)  # 0.3 m overlap along the edge
    assert problems(grids(("A", nudged), ("B", E)), {C: COMM}) == []
    strict = PlanRuleSettings(tolerance_m=0.05)
    assert rules_of(problems(grids(("A", nudged), ("B", E)), {C: COMM}, settings=strict)) == [
        ("overlap", ("A", "B"))]


def test_focus_limits_problems_to_the_grids_of_interest() -> None:
    g = grids(("A", box(104.0, 30.6, 104.011, 30.62)), ("B", E), ("C", W))
    assert {p.grids for p in problems(g, {C: COMM}, focus=["B"])} == {("A", "B")}
    assert {p.grids for p in problems(g, {C: COMM}, focus=["A"])} == {("A", "B"), ("A", "C")}
    assert problems(g, {C: COMM}, focus=["nothing"]) == []


def test_new_problems_ignore_what_the_plan_already_had() -> None:
    # As loaded, A owns an island inside B and sticks 100 m out of the community.
    isl = box(104.015, 30.605, 104.016, 30.606)
    a0 = MultiPolygon([box(104.0, 30.6, 104.01, 30.621), isl])
    b0 = shapely.difference(E, isl)
    before = grids(("A", a0), ("B", b0))
    assert {p.rule for p in problems(before, {C: COMM})} == {"outside_community",
                                                             "not_contiguous"}
    # Moving the A/B boundary east keeps both inherited problems: nothing new.
    a1 = MultiPolygon([shapely.union(box(104.0, 30.6, 104.01, 30.621),
                                     box(104.01, 30.6, 104.012, 30.62)), isl])
    b1 = shapely.difference(box(104.012, 30.6, 104.02, 30.62), isl)
    assert new_problems(before, grids(("A", a1), ("B", b1)), {C: COMM},
                        changed=["A", "B"]) == []
    # Growing the island, or sticking out further, is new.
    big = box(104.015, 30.605, 104.017, 30.607)
    a2 = MultiPolygon([box(104.0, 30.6, 104.01, 30.621), big])
    b2 = shapely.difference(E, big)
    found = new_problems(before, grids(("A", a2), ("B", b2)), {C: COMM}, changed=["A", "B"])
    assert rules_of(found) == [("not_contiguous", ("A",))] and "of it new" in str(found[0])
    a3 = MultiPolygon([box(104.0, 30.6, 104.01, 30.623), isl])
    found = new_problems(before, grids(("A", a3), ("B", b0)), {C: COMM}, changed=["A"])
    assert rules_of(found) == [("outside_community", ("A",))]


def test_violation_message_names_grids_and_says_unchanged() -> None:
    err = PlanRuleViolation("reshape in plan d1", [Problem("overlap", ("A", "B"), "overlap by 5 m²",
                                                           where=(104.0, 30.6))])
    assert isinstance(err, BadInput) and err.code == "plan_rule_violation"
    assert str(err).startswith("reshape in plan d1 rejected, the plan is unchanged: grid A, B")
    assert err.problems[0].as_dict()["rule"] == "overlap"


def test_split_by_line_cuts_in_order_and_keeps_the_area() -> None:
    line = shapely.LineString([(104.005, 30.59), (104.005, 30.63)])
    pieces = split_by_line(W, line)
    assert len(pieces) == 2
    assert pieces[0].centroid.x < pieces[1].centroid.x
    assert math.isclose(sum(p.area for p in pieces), W.area, rel_tol=1e-12)
    assert shapely.union_all(pieces).symmetric_difference(W).area < 1e-15
    with pytest.raises(BadInput, match="does not cut"):
        split_by_line(W, shapely.LineString([(104.005, 30.59), (104.005, 30.61)]))
    with pytest.raises(BadInput, match="LineString"):
        split_by_line(W, shapely.Point(104.005, 30.61))


def test_split_keeps_islands_with_the_nearest_piece() -> None:
    isl = box(104.0085, 30.6, 104.0095, 30.601)
    g = MultiPolygon([box(104.0, 30.605, 104.01, 30.62), isl])
    pieces = split_by_line(g, shapely.LineString([(104.005, 30.6), (104.005, 30.63)]))
    assert [len(shapely.get_parts(p)) for p in pieces] == [1, 2]
    assert pieces[1].contains(isl.centroid)


def test_split_absorbs_a_sliver_when_the_line_grazes_a_corner() -> None:
    line = shapely.LineString([(104.0, 30.6 + 0.2 * M), (104.01, 30.6 + 0.2 * M)])
    with pytest.raises(BadInput, match="does not cut"):
        split_by_line(W, line)


def test_merge_is_exact_along_shared_edges() -> None:
    merged = merge_geometries([W, E])
    assert merged.geom_type == "Polygon"
    assert merged.symmetric_difference(COMM).area < 1e-15


def test_reshape_takes_from_neighbours_and_gives_back_to_the_longest_border() -> None:
    n = box(104.0, 30.62, 104.02, 30.63)  # a grid north of both
    out = reshape_grids("A", box(104.0, 30.6, 104.012, 30.62), {"A": W, "B": E, "N": n})
    assert set(out) == {"A", "B"}
    assert math.isclose(out["B"].area, box(104.012, 30.6, 104.02, 30.62).area, rel_tol=1e-9)
    # shrinking A: the released strip borders B (2.2 km) more than N (0), so B takes it
    out = reshape_grids("A", box(104.0, 30.6, 104.008, 30.62), {"A": W, "B": E, "N": n})
    assert out["B"].symmetric_difference(box(104.008, 30.6, 104.02, 30.62)).area < 1e-12
    # a piece no receiver borders stays uncovered (the gap rule rejects it)
    out = reshape_grids("A", box(104.0, 30.6, 104.008, 30.62), {"A": W, "B": E},
                        receivers=[])
    assert set(out) == {"A"}
    with pytest.raises(BadInput, match="not in the plan"):
        reshape_grids("Z", W, {"A": W})


def test_transfer_moves_only_the_part_inside_the_area() -> None:
    src, dst, piece = transfer(E, W, box(104.009, 30.6, 104.011, 30.601))
    assert math.isclose(piece.area, box(104.01, 30.6, 104.011, 30.601).area, rel_tol=1e-9)
    assert math.isclose(src.area + dst.area, COMM.area, rel_tol=1e-12)
    same = transfer(E, W, box(103.0, 30.0, 103.1, 30.1))
    assert same[2].is_empty and same[0] is E


def test_clean_drops_slivers_and_tiny_holes() -> None:
    sliver = box(104.02, 30.6, 104.02 + 0.2 * M, 30.62)
    pinhole = box(104.005, 30.605, 104.005 + 0.3 * M, 30.605 + 0.3 * M)
    g = clean(shapely.difference(shapely.union(W, sliver), pinhole))
    assert g.geom_type == "Polygon" and len(g.interiors) == 0
    assert clean(None).is_empty and clean(shapely.LineString([(0, 0), (1, 1)])).is_empty
    assert as_multipolygon(W).geom_type == "MultiPolygon"


def test_polsby_popper_of_known_shapes() -> None:
    disc = shapely.Point(104.0, 30.6).buffer(0.01, quad_segs=64)
    square = box(104.0, 30.6, 104.01, 30.6 + 0.01 * math.cos(math.radians(30.6)))
    strip = box(104.0, 30.6, 104.1, 30.6001)
    pp = polsby_popper([disc, square, strip, Polygon()])
    assert pp[0] > 0.95 and abs(pp[1] - math.pi / 4) < 0.02 and pp[2] < 0.02
    assert np.isnan(pp[3])


def test_cells_cover_the_points_and_reject_bad_ids() -> None:
    cells = cells_of_points([104.005, 104.0051], [30.61, 30.61], 11)
    assert len(cells) == 1
    poly = cells_polygon(cells)
    assert poly.contains(shapely.Point(104.005, 30.61))
    assert 1500 < poly.area / M**2 / math.cos(math.radians(30.61)) < 3000
    with pytest.raises(BadInput, match="H3 cell"):
        cells_polygon(["not-a-cell"])
    with pytest.raises(BadInput, match="resolution"):
        cells_of_points([104.0], [30.6], 16)


@settings(max_examples=40, deadline=None)
@given(x=st.floats(104.0005, 104.0095), slope=st.floats(-0.5, 0.5))
def test_split_pieces_tile_the_grid(x: float, slope: float) -> None:
    line = shapely.LineString([(x - slope * 0.03, 30.59), (x + slope * 0.03, 30.63)])
    pieces = split_by_line(W, line)
    assert len(pieces) >= 2
    assert shapely.union_all(pieces).symmetric_difference(W).area < 1e-14
    g = Grids.of([f"P{i}" for i in range(len(pieces))], [C] * len(pieces), pieces)
    assert [p for p in problems(g, {C: W}) if p.rule in ("overlap", "gap")] == []
