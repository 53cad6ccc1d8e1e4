"""Claims: verdicts computed from the rule, never typed in."""

import json
import math

import pytest

from optdyn import claims


def test_verdicts_follow_the_rule():
    cs = claims.ClaimSet("demo")
    a = cs.record(
        "a", "ratio near one", paper=1.0, source="Fig. 1", measured=1.04, rule=claims.between(0.95, 1.2)
    )
    b = cs.record(
        "b",
        "ratio near one",
        paper=1.0,
        source="Fig. 1",
        measured=1.3,
        rule=claims.between(0.95, 1.2),
        why="overshoot",
    )
    c = cs.record(
        "c",
        "grows",
        paper="> 1",
        source="Fig. 2",
        measured=math.nan,
        rule=claims.at_least(1.3),
        why="run diverged at step 40",
    )
    assert (a.verdict, b.verdict, c.verdict) == ("replicated", "not replicated", "inconclusive")
    assert "1.3" in b.reason and "overshoot" in b.reason
    assert "diverged" in c.reason and c.measured is None
    assert cs.counts() == {"replicated": 1, "not replicated": 1, "inconclusive": 1}


def test_rules_edges():
    assert claims.within(38, 0.15).holds(38 * 1.15) and not claims.within(38, 0.15).holds(38 * 1.16)
    assert claims.at_most(1.15).holds(1.15) and not claims.at_most(1.15).holds(1.151)


def test_duplicate_ids_and_bad_verdicts_rejected():
    cs = claims.ClaimSet("demo")
    cs.record("a", "x", paper=1, source="s", measured=1, rule=claims.at_least(0))
    with pytest.raises(ValueError, match="twice"):
        cs.record("a", "x", paper=1, source="s", measured=1, rule=claims.at_least(0))
    with pytest.raises(ValueError, match="verdict"):
        claims.Claim("id", "s", "1", "src", 1.0, "r", "green")


def test_mimebundle_round_trip(tmp_path):
    cs = claims.ClaimSet("demo")
    cs.record(
        "a", "ratio <near> one", paper=38.0, source="Fig. 1", measured=37.0, rule=claims.within(38, 0.15)
    )
    bundle = cs._repr_mimebundle_()
    assert "&lt;near&gt;" in bundle["text/html"] and "replicated" in bundle["text/html"]
    path = tmp_path / "demo.claims.json"
    path.write_text(json.dumps(bundle[claims.MIME_TYPE]))
    assert claims.load(path).claims == cs.claims
