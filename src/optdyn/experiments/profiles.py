"""What every experiment module checks before it computes: the profile's sizes and the seed's range."""

from __future__ import annotations

from collections.abc import Mapping

#: Seeds a chapter accepts (the parameters cell declares the same range).
SEED_RANGE = (0, 1000)


def profile_config(profiles: Mapping[str, dict], profile: str) -> dict:
    """``profiles[profile]``; a ValueError naming the known profiles for any other name."""
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(profiles)}")
    return profiles[profile]


def check_seed(seed: int) -> None:
    """A ValueError unless ``seed`` lies in :data:`SEED_RANGE`."""
    lo, hi = SEED_RANGE
    if not lo <= seed <= hi:
        raise ValueError(f"seed must lie in [{lo}, {hi}], got {seed}")
