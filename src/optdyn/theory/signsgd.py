"""Risk ODEs of signSGD and SGD on high-dimensional least squares (Xiao, Marshall, Agarwala & Paquette
2024)."""

from __future__ import annotations

import numpy as np
from scipy import integrate, optimize, special, stats

NOISES = ("none", "gaussian", "laplace", "uniform", "rademacher", "cauchy", "student_t3")


def _check_noise(noise: str, scale: float) -> None:
    if noise not in NOISES:
        raise ValueError(f"unknown label noise {noise!r}; known: {', '.join(NOISES)}")
    if not (scale >= 0 and np.isfinite(scale)):
        raise ValueError(f"noise scale must be finite and non-negative, got {scale}")


def check_covariance(K) -> np.ndarray:
    """K as a float array: a 1-D spectrum (diagonal K) or a symmetric PSD matrix with a positive diagonal."""
    K = np.asarray(K, dtype=float)
    if K.ndim == 1:
        if np.any(~np.isfinite(K)) or np.any(K <= 0):
            raise ValueError("covariance is not positive definite: a diagonal entry is <= 0 or not finite")
        return K
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"covariance must be a 1-D spectrum or a square matrix, got shape {K.shape}")
    if not np.allclose(K, K.T, atol=1e-10 * max(1.0, np.abs(K).max())):
        raise ValueError("covariance is not symmetric")
    lo = np.linalg.eigvalsh(K)[0]
    if lo < -1e-10 * max(1.0, np.abs(K).max()):
        raise ValueError(f"covariance is not positive semi-definite (smallest eigenvalue {lo:.3g})")
    if np.any(np.diag(K) <= 0):
        raise ValueError("covariance has a zero diagonal entry: sign(x_i) is undefined")
    return K


def noise_second_moment(noise: str, scale: float) -> float:
    """E[ε²] of the label noise (∞ for Cauchy). Scales: Gaussian s = std, Laplace b, uniform on [−a, a],
    Rademacher ±s, Cauchy γ, Student-t with 3 degrees of freedom s (E ε² = 3s²)."""
    _check_noise(noise, scale)
    factor = {
        "none": 0.0,
        "gaussian": 1.0,
        "laplace": 2.0,
        "uniform": 1 / 3,
        "rademacher": 1.0,
        "student_t3": 3.0,
    }
    return np.inf if noise == "cauchy" and scale > 0 else factor.get(noise, 0.0) * scale**2


def signsgd_phi(R, noise: str = "none", scale: float = 0.0):
    """The risk-dependent factor φ(R) of signSGD's drift, E[sign(r x_i)] = φ(R) (Kδ)_i / √K_ii:

        φ(R) = (2/π) E_ε[exp(−ε²/(4R))] / √(2R).

    Closed forms: none (2/π)/√(2R); Gaussian(s) (2/π)/√(2R + s²); Laplace(b) (2/π)(√(πR)/b) erfcx(√R/b)/√(2R);
    uniform[−a, a] (2/π)(√(πR)/a) erf(a/(2√R))/√(2R); Rademacher(s) (2/π) exp(−s²/(4R))/√(2R);
    Cauchy(γ) (2/π) erfcx(γ/(2√R))/√(2R); Student-t3 by quadrature. As R → 0, φ → 2√(2/π) p_ε(0): only
    the noise density at 0 counts.
    """
    _check_noise(noise, scale)
    R = np.maximum(np.asarray(R, dtype=float), 1e-300)
    base = (2 / np.pi) / np.sqrt(2 * R)
    if noise == "none" or scale == 0:
        return base
    if noise == "gaussian":
        return (2 / np.pi) / np.sqrt(2 * R + scale**2)
    if noise == "laplace":
        return base * np.sqrt(np.pi * R) / scale * special.erfcx(np.sqrt(R) / scale)
    if noise == "uniform":
        return base * np.sqrt(np.pi * R) / scale * special.erf(scale / (2 * np.sqrt(R)))
    if noise == "rademacher":
        return base * np.exp(-(scale**2) / (4 * R))
    if noise == "student_t3":  # no closed form: quadrature over the noise density
        law = stats.t(3, scale=scale)
        mean = np.vectorize(lambda r: law.expect(lambda e: np.exp(-(e**2) / (4 * r))))
        return base * mean(R)
    return base * special.erfcx(scale / (2 * np.sqrt(R)))  # cauchy


def sign_covariance(K) -> np.ndarray:
    """K_σ = E[sign(x) sign(x)ᵀ] = (2/π) arcsin(D^{-1/2} K D^{-1/2}) for x ~ N(0, K), D = diag(K).

    Its diagonal is exactly 1. A 1-D ``K`` (diagonal covariance) gives the identity.
    """
    K = check_covariance(K)
    if K.ndim == 1:
        return np.eye(len(K))
    s = 1 / np.sqrt(np.diag(K))
    return (2 / np.pi) * np.arcsin(np.clip(K * s[:, None] * s[None, :], -1.0, 1.0))


def sgd_stability_limit(K) -> float:
    """Largest η for which the SGD risk ODE is stable: η < 2d / tr K (the Volterra kernel's mass is
    η tr K / (2d)); 2 for K = I."""
    K = check_covariance(K)
    tr = K.sum() if K.ndim == 1 else np.trace(K)
    return 2 * len(K) / tr


def _modes(K, delta0, init_scale, method):
    """Eigenvalues, initial mode energies and noise weights of the per-mode ODE.

    signSGD: Ktil = D^{-1/4} K D^{-1/4} = Σ μ_j w_j w_jᵀ, r_j = ⟨w_j, D^{1/4} δ⟩²,
    c_j = w_jᵀ D^{1/4} K_σ D^{1/4} w_j.
    SGD: K = Σ λ_j u_j u_jᵀ, r_j = ⟨u_j, δ⟩², c_j = λ_j.
    Without ``delta0``, δ0 is random with E[δ0 δ0ᵀ] = init_scale² I/d and r_j(0) takes its mean.
    """
    d = len(K)
    if K.ndim == 1:
        mu = np.sqrt(K) if method == "signsgd" else K.copy()
        w2 = (np.asarray(delta0, float) ** 2) if delta0 is not None else np.full(d, init_scale**2 / d)
        r0 = (np.sqrt(np.sqrt(K)) if method == "signsgd" else 1.0) ** 2 * w2
        c = np.sqrt(K) if method == "signsgd" else K.copy()
        return mu, r0, c
    if method == "signsgd":
        q = np.diag(K) ** 0.25
        mu, W = np.linalg.eigh(K / q[:, None] / q[None, :])
        M = q[:, None] * sign_covariance(K) * q[None, :]
        c = np.einsum("ij,ik,kj->j", W, M, W)
        scale = q
    else:
        mu, W = np.linalg.eigh(K)
        c = mu.copy()
        scale = np.ones(d)
    if delta0 is not None:
        r0 = (W.T @ (scale * np.asarray(delta0, float))) ** 2
    else:
        r0 = init_scale**2 / d * np.einsum("ij,i,ij->j", W, scale**2, W)
    return mu, r0, c


def risk_ode(
    K,
    eta: float,
    t,
    *,
    method: str = "signsgd",
    noise: str = "none",
    scale: float = 0.0,
    delta0=None,
    init_scale: float = 1.0,
    rtol: float = 1e-7,
    modes: bool = False,
    clip: float = np.inf,
):
    """Deterministic excess-risk curve R(t) = ½ δᵀKδ of streaming SGD or signSGD with step η/d, t = k/d.

    signSGD (Xiao et al. 2024, risk ODE of signHSGD), per eigenmode j of Ktil = D^{-1/4} K D^{-1/4}:

        dr_j/dt = −2η φ(R) μ_j r_j + (η²/d) w_jᵀ D^{1/4} K_σ D^{1/4} w_j,     R = ½ Σ μ_j r_j,

    with φ from :func:`signsgd_phi` and K_σ from :func:`sign_covariance`.
    SGD (homogenized SGD), per eigenmode of K:

        dr_j/dt = −2η λ_j r_j + (η²/d) λ_j (2R + E ε²),                      R = ½ Σ λ_j r_j.

    Clipped SGD (``method="clipped"``, Marshall et al. 2024) at the dimension-free threshold
    c̃ = c/√tr K (``clip``), per eigenmode of K:

        dr_j/dt = −2η μ_c(R) λ_j r_j + (η²/d) λ_j E[ψ_c²](R),

    with the factors of :func:`optdyn.theory.clipping.tabulated_factors` (c̃ = ∞ is SGD).

    Solved with ``scipy.integrate.solve_ivp`` (LSODA), vectorized over the spectrum. ``K`` is a 1-D
    spectrum (diagonal covariance) or a PSD matrix. Returns (t, R) arrays, or (t, R, r) with the mode
    energies r of shape (len(t), d) when ``modes``; for SGD with E ε² = ∞ (Cauchy) R is ∞.
    Raises ValueError for a non-PSD K, a negative noise scale, η ≤ 0, or SGD past :func:`sgd_stability_limit`.
    """
    if method not in ("signsgd", "sgd", "clipped"):
        raise ValueError(f"unknown method {method!r}; known: signsgd, sgd, clipped")
    if method == "clipped" and np.isinf(clip):
        method = "sgd"
    K = check_covariance(K)
    _check_noise(noise, scale)
    if not (eta > 0 and np.isfinite(eta)):
        raise ValueError(f"learning rate must be positive, got {eta}")
    if method == "sgd" and eta >= sgd_stability_limit(K):
        raise ValueError(
            f"learning rate {eta} is past the SGD risk ODE's stability limit 2d/tr K = "
            f"{sgd_stability_limit(K):.4g}: the risk diverges"
        )
    if method == "clipped":
        from .clipping import tabulated_factors  # clipping imports this module

        tabulated_factors(1.0, clip, noise, scale)  # validates the threshold
    t = np.asarray(t, dtype=float)
    d = len(K)
    mu, r0, c = _modes(K, delta0, init_scale, "signsgd" if method == "signsgd" else "sgd")
    m2 = noise_second_moment(noise, scale)
    if method == "sgd" and not np.isfinite(m2):
        inf = np.full_like(t, np.inf)
        return (t, inf, np.full((len(t), d), np.inf)) if modes else (t, inf)

    def rhs(_, r):
        R = 0.5 * mu @ r
        if method == "signsgd":
            return -2 * eta * signsgd_phi(R, noise, scale) * mu * r + eta**2 / d * c
        if method == "clipped":
            descent, second = tabulated_factors(R, clip, noise, scale)
            return -2 * eta * descent * mu * r + eta**2 / d * c * second
        return -2 * eta * mu * r + eta**2 / d * c * (2 * R + m2)

    sol = integrate.solve_ivp(rhs, (t[0], t[-1]), r0, t_eval=t, method="LSODA", rtol=rtol, atol=1e-14)
    if not sol.success:
        raise RuntimeError(f"risk ODE failed: {sol.message}")
    r = sol.y.T
    R = 0.5 * r @ mu
    return (t, R, r) if modes else (t, R)


def signsgd_isotropic_time(u, eta: float, u0: float) -> np.ndarray:
    """Closed form for K = I and no label noise: with u = √(2R), du/dt = −a + b/u, a = 2η/π, b = η²/2, so
    t(u) = [(w − w0) − b ln(w/w0)]/a², w = b − a u, for u between u0 and the floor u* = b/a = πη/4
    (R* = π²η²/32): √R falls linearly, not exponentially."""
    a, b = 2 * eta / np.pi, eta**2 / 2
    w, w0 = b - a * np.asarray(u, float), b - a * u0
    return ((w - w0) - b * np.log(w / w0)) / a**2


def isotropic_floor(
    eta: float, method: str = "signsgd", noise: str = "gaussian", scale: float = 0.0
) -> float:
    """Fixed point of the K = I risk ODE, dR/dt = −2ηφ(R)R + η²/2 (signSGD) or
    −(2η − η²)R + η² E ε²/2 (SGD, R* = η E ε² / (2(2 − η))). Gaussian signSGD: R*/√(2R* + s²) = πη/8."""
    _check_noise(noise, scale)
    if method == "sgd":
        if eta >= 2:
            raise ValueError(f"learning rate {eta} is past the SGD stability limit 2 for K = I")
        return eta * noise_second_moment(noise, scale) / (2 * (2 - eta))

    def balance(log_r):
        return 2 * eta * signsgd_phi(np.exp(log_r), noise, scale) * np.exp(log_r) - eta**2 / 2

    return float(np.exp(optimize.brentq(balance, -60.0, 20.0)))
