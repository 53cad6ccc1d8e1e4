"""Claims as data: records measured per seed, verdicts from the t-interval over seeds against fixed bands.

The intervals are checked against values computed by hand: for values (1.0, 1.1, 1.2) the mean is 1.1,
the sample standard deviation 0.1, and t(0.95, 2) = 2.919986, so the 90 % interval is
1.1 ± 2.919986·0.1/√3 = 1.1 ± 0.168585.
"""

import json
import math

import pytest

from optdyn import claims

HALF_3 = 2.919986 * 0.1 / math.sqrt(3)


def test_t_interval_matches_hand_computation():
    i = claims.t_interval([1.0, 1.1, 1.2])
    assert i.estimate == pytest.approx(1.1)
    assert (i.lo, i.hi) == pytest.approx((1.1 - HALF_3, 1.1 + HALF_3), abs=1e-6)
    two = claims.t_interval([0.0, 2.0])  # mean 1, s = √2, t(0.95, 1) = 6.313752
    assert two.hi - 1 == pytest.approx(6.313752 * math.sqrt(2) / math.sqrt(2), abs=1e-5)
    assert claims.t_interval([3.0]) is None
    assert claims.t_interval([2.0, 2.0, 2.0]) == claims.Interval(2.0, 2.0, 2.0, 3)


@pytest.mark.parametrize(
    ("values", "band", "verdict", "reason"),
    [
        ([1.0, 1.1, 1.2], claims.between(0.8, 1.4), "replicated", ""),
        ([1.0, 1.1, 1.2], claims.at_least(1.5), "not replicated", "below"),
        ([1.0, 1.1, 1.2], claims.at_most(0.5), "not replicated", "above"),
        ([1.0, 1.1, 1.2], claims.between(0.8, 1.2), "inconclusive", "straddles"),
        ([1.0, None, math.nan], claims.between(0.8, 1.4), "inconclusive", "1 of 3 seeds finite; 3 needed"),
        ([1.0], claims.between(0.8, 1.4), "inconclusive", "1 of 1 seeds finite; 3 needed"),
    ],
)
def test_three_way_verdicts(values, band, verdict, reason):
    got, why, _ = claims.judge(values, band, seeds_required=3)
    assert got == verdict and reason in why


def test_edges_of_the_band_count_as_inside():
    lo = 1.1 - HALF_3
    assert claims.judge([1.0, 1.1, 1.2], claims.between(lo - 1e-9, 2), 3)[0] == "replicated"
    assert claims.judge([1.0, 1.1, 1.2], claims.between(lo + 1e-3, 2), 3)[0] == "inconclusive"


def test_premise_failed_makes_the_claim_inconclusive():
    verdict, reason, interval = claims.judge([1.0, 1.1, 1.2], claims.between(0, 2), 3, "not replicated")
    assert verdict == "inconclusive" and "premise failed" in reason and interval is not None


def _specs():
    return [
        claims.paper_claim(
            "ratio",
            "ratio near one",
            paper=1.0,
            source="Fig. 1",
            band=claims.between(0.8, 1.4),
            measure=lambda d: d["ratio"],
        ),
        claims.paper_claim(
            "gap",
            "a gap exists",
            paper="> 1",
            source="Fig. 2",
            band=claims.at_least(2.0),
            measure=lambda d: d["gap"],
        ),
        claims.paper_claim(
            "closes",
            "the gap closes",
            paper="closes",
            source="Fig. 2",
            band=claims.at_most(0.1),
            measure=lambda d: claims.Measurement(d["closes"], detail="per run"),
            given="gap",
        ),
        claims.check(
            "identity", "sign limit is exact", band=claims.at_most(1e-12), measure=lambda d: d["err"]
        ),
    ]


def _run(seed, ratio, gap, closes, err):
    data = {"ratio": ratio, "gap": gap, "closes": closes, "err": err}
    return claims.ClaimSet.measure("demo", _specs(), data, seed=seed, profile="default")


def test_aggregate_judges_claims_and_checks_apart():
    runs = [_run(0, 1.0, 1.0, 0.0, 0.0), _run(1, 1.1, 1.1, 0.0, 0.0), _run(2, 1.2, 1.2, 0.0, 1.0)]
    summary = claims.aggregate(runs)
    by_id = {c["id"]: c for c in summary["claims"]}
    assert by_id["ratio"]["verdict"] == "replicated"
    assert by_id["ratio"]["interval"] == pytest.approx([1.1 - HALF_3, 1.1 + HALF_3], abs=1e-6)
    assert by_id["gap"]["verdict"] == "not replicated"
    assert by_id["closes"]["verdict"] == "inconclusive" and "premise failed" in by_id["closes"]["reason"]
    assert [c["id"] for c in summary["checks"]] == ["identity"]
    assert summary["checks"][0]["verdict"] == "fails" and "seed 2" in summary["checks"][0]["reason"]
    assert claims.counts(summary) == {
        "replicated": 1,
        "not replicated": 1,
        "inconclusive": 1,
        "holds": 0,
        "fails": 1,
    }
    assert "t-interval" in summary["interval_method"]


def test_non_finite_values_are_recorded_not_raised():
    run = _run(0, math.inf, math.nan, None, 0.0)
    values = {r.id: r.value for r in run.records}
    assert values == {"ratio": None, "gap": None, "closes": None, "identity": 0.0}
    assert run.records[0].why == "no finite measurement"


def test_seed_round_trip_through_the_mime_bundle():
    run = _run(0, 1.0, 3.0, 0.05, 0.0)
    bundle = run._repr_mimebundle_()
    back = claims.ClaimSet.from_dict(json.loads(json.dumps(bundle[claims.MIME_TYPE])))
    assert back == run
    assert "seed 0" in bundle["text/html"] and "Checks of our own code" in bundle["text/html"]


def test_declarations_are_validated():
    with pytest.raises(ValueError, match="twice"):
        claims.validate(_specs() + _specs()[:1])
    with pytest.raises(ValueError, match="premise"):
        claims.validate(_specs()[2:])
    with pytest.raises(ValueError, match="paper's value"):
        claims.Spec("x", "paper", "s", claims.at_least(0), lambda d: 0.0)
    with pytest.raises(ValueError, match="kind"):
        claims.Spec("x", "claim", "s", claims.at_least(0), lambda d: 0.0, "1", "Fig. 1")
    with pytest.raises(ValueError, match="empty"):
        claims.between(2, 1)


def test_seeds_must_declare_the_same_records():
    other = claims.ClaimSet.measure("demo", _specs()[:2], {"ratio": 1, "gap": 1}, seed=1, profile="default")
    with pytest.raises(ValueError, match="different claims"):
        claims.aggregate([_run(0, 1.0, 1.0, 0.0, 0.0), other])


def test_changed_band_is_listed():
    spec = claims.paper_claim(
        "late",
        "settles",
        paper=1.0,
        source="Fig. 3",
        band=claims.between(0.9, 1.2),
        measure=lambda d: 1.0,
        changed=[claims.Change(claims.between(0.95, 1.1), "the paper's own spread is 10 %")],
    )
    summary = claims.aggregate(
        [claims.ClaimSet.measure("d", [spec], {}, seed=s, profile="q") for s in (0, 1)]
    )
    assert "was [0.95, 1.1]" in claims.summary_tables_html(summary)
