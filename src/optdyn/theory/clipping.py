"""Clipped SGD on high-dimensional streaming least squares (Marshall, Xiao, Agarwala & Paquette 2024).

Streaming least squares as in ``optdyn.theory.signsgd``: x ~ N(0, K), y = ⟨x, θ*⟩ + ε, step η/d, time
t = k/d. Clipped SGD moves along clip_c(g) = g min(1, c/‖g‖) with g = r x, r = ⟨x, δ⟩ − ε. Since
‖x‖² concentrates at tr K, ‖g‖ ≈ ``|r|`` √tr K, and clipping the gradient is clipping the residual,
ψ(r) = sign(r) min(``|r|``, c̃), at the dimension-free threshold c̃ = c/√tr K. Conditional on ε,
u = ⟨x, δ⟩ ~ N(0, 2R) with R = ½ δᵀKδ. Two unitless factors carry the whole effect of clipping:

* the descent factor μ_c(R) = P(``|u − ε|`` ≤ c̃), by Stein's lemma E[ψ(r) x] = μ_c(R) K δ;
* the variance factor ν_c(R) = E[ψ(r)²] / E[r²], E[r²] = 2R + E ε²; the update noise is E[ψ²] K.

The functions take the threshold c̃ (``clip``; ∞ is plain SGD) and the noise laws of
``optdyn.theory.NOISES``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import integrate, optimize, special

from .signsgd import _check_noise, noise_second_moment

_SQRT_2PI = np.sqrt(2 * np.pi)
_LOG_R_GRID = np.linspace(np.log(1e-4), np.log(1e3), 141)  # where the ODE's quadrature tables live


def _check_clip(clip: float) -> float:
    clip = float(clip)
    if not clip > 0:  # also rejects NaN
        raise ValueError(f"clipping threshold must be positive (∞ for no clipping), got {clip}")
    return clip


def _norm_pieces(m, s, c):
    """For w ~ N(m, s²): P(``|w|`` ≤ c) and E[w² 1{``|w|`` ≤ c}] (closed form, vectorised)."""
    a, b = (-c - m) / s, (c - m) / s
    mass = special.ndtr(b) - special.ndtr(a)
    pa, pb = np.exp(-0.5 * a**2) / _SQRT_2PI, np.exp(-0.5 * b**2) / _SQRT_2PI
    second = (m**2 + s**2) * mass + 2 * m * s * (pa - pb) + s**2 * (a * pa - b * pb)
    return mass, second


def _gaussian_factors(R, clip, s0):
    """Closed form for ε ~ N(0, s0²) and finite c̃: with s² = 2R + s0², a = c̃/s,
    μ = erf(a/√2) and E[ψ²] = s²[(2Φ(a) − 1) − 2aφ(a)] + 2c̃²(1 − Φ(a))."""
    s = np.sqrt(2 * R + s0**2)
    a = clip / s
    mu = special.erf(a / np.sqrt(2))
    psi2 = s**2 * (mu - 2 * a * np.exp(-0.5 * a**2) / _SQRT_2PI) + 2 * clip**2 * special.ndtr(-a)
    return mu, psi2


def noise_density(noise: str, scale: float):
    """The density p_ε of a continuous label noise of ``optdyn.theory.NOISES``, as a numpy
    function (Gaussian std s, Laplace b, uniform [−a, a], Cauchy γ, Student-t3 scale s:
    p(e) = 2/(π√3 s) (1 + e²/(3s²))⁻²)."""
    _check_noise(noise, scale)
    if noise in ("none", "rademacher") or scale == 0:
        raise ValueError(f"label noise {noise!r} with scale {scale} has no density")
    s = float(scale)
    return {
        "gaussian": lambda e: np.exp(-0.5 * (e / s) ** 2) / (s * _SQRT_2PI),
        "laplace": lambda e: np.exp(-np.abs(e) / s) / (2 * s),
        "uniform": lambda e: (np.abs(e) <= s) / (2 * s),
        "cauchy": lambda e: 1 / (np.pi * s * (1 + (e / s) ** 2)),
        "student_t3": lambda e: 2 / (np.pi * np.sqrt(3) * s) / (1 + e**2 / (3 * s**2)) ** 2,
    }[noise]


def _quadrature_factors(R: np.ndarray, clip: np.ndarray, noise: str, scale: float) -> np.ndarray:
    """μ and E[ψ²] at the pairs (``R``, ``clip``) (1-D, equal length, c̃ finite) by quadrature over ε of the
    Gaussian closed forms in u: scipy ``quad_vec``, vectorised over the pairs. Returns shape (2, len(R)).

    μ = E_ε[P(``|u − ε|`` ≤ c̃)], E[ψ²] = c̃² − E_ε[c̃² P(``|w|`` ≤ c̃) − E(w² 1{``|w|`` ≤ c̃})] with w = u − ε;
    both integrands vanish for ``|ε|`` > c̃ + 12√(2R), which bounds the interval.
    """
    s = np.sqrt(2 * R)
    if noise == "rademacher":
        parts = [_norm_pieces(-e, s, clip) for e in (scale, -scale)]
        mu = 0.5 * sum(p[0] for p in parts)
        return np.stack([mu, clip**2 - 0.5 * sum(clip**2 * p[0] - p[1] for p in parts)])
    pdf = noise_density(noise, scale)
    lim = float((clip + 12 * s).max())
    points = {0.0, *clip, *(-clip)} | ({-scale, scale} if noise == "uniform" else set())

    def integrand(e):
        mass, second = _norm_pieces(-e, s, clip)
        return np.concatenate([mass, clip**2 * mass - second]) * pdf(e)

    total, _ = integrate.quad_vec(
        integrand, -lim, lim, points=sorted(p for p in points if -lim < p < lim), epsabs=1e-12, limit=5000
    )
    mu, deficit = np.split(total, 2)
    return np.stack([mu, clip**2 - deficit])


def clipping_factors(R, clip, noise: str = "gaussian", scale: float = 1.0, *, quadrature: bool = False):
    """The descent factor μ_c(R) = P(``|u − ε|`` ≤ c̃) and the clipped second moment E[ψ_c(r)²], u ~ N(0, 2R)
    (Marshall et al. 2024, Sec. 3; derived via Stein's lemma).

    Gaussian noise N(0, s²) and no noise: closed form, μ = erf(a/√2) and
    E[ψ²] = σ²[(2Φ(a) − 1) − 2aφ(a)] + 2c̃²(1 − Φ(a)) with σ² = 2R + s², a = c̃/σ; other laws, or
    ``quadrature=True``: scipy quadrature over ε (``quad_vec``). ``R`` and ``clip`` broadcast; c̃ = ∞ gives
    μ = 1 and E[ψ²] = 2R + E ε². Returns two arrays of the broadcast shape.
    """
    _check_noise(noise, scale)
    R, clip = np.broadcast_arrays(np.asarray(R, dtype=float), np.asarray(clip, dtype=float))
    if np.any(~(R > 0)):
        raise ValueError("risk R must be positive")
    if np.any(~(clip > 0)):
        raise ValueError(f"clipping threshold must be positive (∞ for no clipping), got {clip}")
    mu, psi2 = np.ones(R.shape), np.array(2 * R + noise_second_moment(noise, scale), dtype=float)
    finite = np.isfinite(clip)
    if not finite.any():
        return mu, psi2
    r, c = R[finite], clip[finite]
    if noise == "none" or scale == 0:
        mu[finite], psi2[finite] = _gaussian_factors(r, c, 0.0)
    elif noise == "gaussian" and not quadrature:
        mu[finite], psi2[finite] = _gaussian_factors(r, c, scale)
    else:
        mu[finite], psi2[finite] = _quadrature_factors(r, c, noise, scale)
    return mu, psi2


def clipping_nu(R, clip, noise: str = "gaussian", scale: float = 1.0, **kw):
    """The variance factor ν_c(R) = E[ψ²] / (2R + E ε²) (0 when E ε² = ∞, Cauchy)."""
    _, psi2 = clipping_factors(R, clip, noise, scale, **kw)
    return psi2 / (2 * np.asarray(R, float) + noise_second_moment(noise, scale))


def clipped_stability_ratio(R, clip, noise: str = "gaussian", scale: float = 1.0, **kw):
    """μ/ν, the clipped-stability criterion (CSC): the factor by which clipping multiplies the largest
    learning rate at which the risk still falls at R. Clipping enlarges it where μ/ν > 1."""
    mu, psi2 = clipping_factors(R, clip, noise, scale, **kw)
    return mu * (2 * np.asarray(R, float) + noise_second_moment(noise, scale)) / psi2


def clipped_comparison_ratio(R, clip, noise: str = "gaussian", scale: float = 1.0, **kw):
    """μ²/ν, the clipping-comparison criterion (CCC): the ratio of the best instantaneous descent rates of
    clipped SGD and SGD at R, −dR/dt = 2μ²R²/E[ψ²] against 2R²/(2R + E ε²) (K = I). Clipping makes faster
    progress than any SGD learning rate where μ²/ν > 1. ∞ for Cauchy noise."""
    mu, psi2 = clipping_factors(R, clip, noise, scale, **kw)
    return mu**2 * (2 * np.asarray(R, float) + noise_second_moment(noise, scale)) / psi2


@lru_cache(maxsize=256)
def _table(clip: float, noise: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """μ and log E[ψ²] on the log-R grid ``_LOG_R_GRID`` (quadrature, computed once per law)."""
    mu, psi2 = clipping_factors(np.exp(_LOG_R_GRID), clip, noise, scale)
    return mu, np.log(psi2)


def tabulated_factors(R, clip: float, noise: str = "gaussian", scale: float = 1.0):
    """μ and E[ψ²] for the ODE: closed form where there is one, else linear interpolation in log R of a
    141-point quadrature table on R ∈ [10⁻⁴, 10³] (clamped outside), built once per (c̃, law)."""
    _check_noise(noise, scale)
    clip = _check_clip(clip)
    R = np.maximum(np.asarray(R, dtype=float), 1e-300)
    if np.isinf(clip) or noise in ("gaussian", "none") or scale == 0:
        return clipping_factors(R, clip, noise, scale)
    mu, log_psi2 = _table(clip, noise, float(scale))
    x = np.clip(np.log(R), _LOG_R_GRID[0], _LOG_R_GRID[-1])
    return np.interp(x, _LOG_R_GRID, mu), np.exp(np.interp(x, _LOG_R_GRID, log_psi2))


def isotropic_clipped_rate(R, eta, clip: float, noise: str = "gaussian", scale: float = 1.0):
    """dR/dt of clipped SGD for K = I: −2η μ_c(R) R + (η²/2) E[ψ_c²](R) (the sum over modes of
    :func:`optdyn.theory.risk_ode` with ``method="clipped"``; c̃ = ∞ is SGD)."""
    mu, psi2 = tabulated_factors(R, clip, noise, scale)
    return -2 * eta * mu * R + 0.5 * eta**2 * psi2


def isotropic_clipped_floor(eta: float, clip: float, noise: str = "gaussian", scale: float = 1.0) -> float:
    """The fixed point R* of the K = I clipped risk ODE, 4μ_c(R*)R* = η E[ψ_c²](R*) (∞ when SGD meets
    infinite-variance noise; for c̃ = ∞ it is ηE ε²/(2(2 − η)))."""
    if not eta > 0:
        raise ValueError(f"learning rate must be positive, got {eta}")
    if np.isinf(_check_clip(clip)) and not np.isfinite(noise_second_moment(noise, scale)):
        return np.inf

    def balance(log_r):
        return float(isotropic_clipped_rate(np.exp(log_r), eta, clip, noise, scale))

    if balance(np.log(1e4)) >= 0:
        return np.inf
    return float(np.exp(optimize.brentq(balance, np.log(1e-9), np.log(1e4))))


def best_schedule_risk(t, clip: float = np.inf, noise: str = "gaussian", scale: float = 1.0, R0: float = 0.5):
    """The K = I risk under the best learning-rate schedule, for SGD (c̃ = ∞) or clipped SGD at a fixed c̃.

    At each R the rate that makes the risk fall fastest is η*(R) = 2μR/E[ψ²], giving

        dR/dt = −2μ_c(R)² R² / E[ψ_c²](R)   (SGD: −2R²/(2R + E ε²)).

    By the comparison principle for a scalar ODE, no schedule η(t) ends lower at any t: this is the floor of
    every learning-rate schedule (our derivation; Marshall et al. 2024 state it as a theorem comparing
    clipped and unclipped SGD). Returns (t, R, η*(R(t))). For SGD with infinite-variance noise η* = 0 and
    R stays at R0.
    """
    t = np.asarray(t, dtype=float)
    _check_noise(noise, scale)
    clip = _check_clip(clip)

    def rate(_, y):
        R = np.exp(y[0])
        mu, psi2 = tabulated_factors(R, clip, noise, scale)
        return [-2 * mu**2 * R / psi2]

    sol = integrate.solve_ivp(rate, (t[0], t[-1]), [np.log(R0)], t_eval=t, method="LSODA", rtol=1e-8)
    if not sol.success:
        raise RuntimeError(f"best-schedule ODE failed: {sol.message}")
    R = np.exp(sol.y[0])
    mu, psi2 = tabulated_factors(R, clip, noise, scale)
    return t, R, 2 * mu * R / psi2
