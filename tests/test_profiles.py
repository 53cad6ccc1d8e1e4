"""The checks every experiment module runs before computing: profile names and seed range."""

import pytest

from optdyn.experiments import conservative_sharpening, nfa_alignment
from optdyn.experiments.profiles import check_seed, profile_config


def test_profile_config_returns_the_profile_and_names_the_known_ones_otherwise():
    profiles = {"quick": {"n": 1}, "default": {"n": 2}}
    assert profile_config(profiles, "default") == {"n": 2}
    with pytest.raises(ValueError, match=r"unknown profile 'huge'; known: quick, default"):
        profile_config(profiles, "huge")


@pytest.mark.parametrize("seed", [0, 1000])
def test_seeds_at_the_ends_of_the_range_pass(seed):
    check_seed(seed)


@pytest.mark.parametrize("seed", [-1, 1001])
def test_seeds_outside_the_range_are_refused(seed):
    with pytest.raises(ValueError, match=rf"seed must lie in \[0, 1000\], got {seed}"):
        check_seed(seed)


def test_chapters_use_the_shared_checks():
    assert conservative_sharpening.config("quick") is conservative_sharpening.PROFILES["quick"]
    with pytest.raises(ValueError, match="unknown profile"):
        nfa_alignment.config("huge")
