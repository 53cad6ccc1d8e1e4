"""Closed forms: stability thresholds of first-order methods on a quadratic.

On L(w) = a w²/2 each method is a linear recursion; it is stable iff the curvature a lies below the
threshold returned here (Cohen et al. 2021; Cohen et al. 2022). Applied to
λ1(H) for a non-adaptive method, and to λ1(P^{-1}H) for a method preconditioned by a fixed P.
"""

from __future__ import annotations

METHODS = ("gd", "heavy_ball", "nesterov", "ema_momentum")


def stability_threshold(method: str, lr: float, momentum: float = 0.0) -> float:
    """Largest stable curvature a of ``method`` with step size η = ``lr`` and momentum β.

    gd:            2/η
    heavy_ball:    (2 + 2β)/η                 (v ← βv + g;  w ← w − ηv)
    nesterov:      (2 + 2β)/((1 + 2β)η)       (v ← βv + g;  w ← w − η(g + βv))
    ema_momentum:  (2 + 2β)/((1 − β)η)        (m ← βm + (1−β)g; w ← w − ηm; Adam's momentum; 38/η at β=0.9)
    """
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    b = momentum
    numerators = {
        "gd": 2.0,
        "heavy_ball": 2 + 2 * b,
        "nesterov": (2 + 2 * b) / (1 + 2 * b),
        "ema_momentum": (2 + 2 * b) / (1 - b),
    }
    if method not in numerators:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return numerators[method] / lr


def adam_threshold(lr: float, beta1: float) -> float:
    """The Adaptive-EoS threshold on λ1(P^{-1}H): (2 + 2β1)/((1 − β1)η) (Cohen et al. 2022, abstract)."""
    return stability_threshold("ema_momentum", lr, beta1)
