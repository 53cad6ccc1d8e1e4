"""Protocol of Xiao, Marshall, Agarwala & Paquette (2024), "Exact risk curves of signSGD in high dimensions".

Streaming least squares: one fresh sample x ~ N(0, K) per step, label y = ⟨x, θ*⟩ + ε, step η/d, time
t = k/d, θ0 = 0, θ* ~ N(0, init_scale² I/d). The statistic is the excess risk R = ½ δᵀKδ, δ = θ − θ*,
computed exactly from δ. Simulations batch all seeds as a (seeds, d) float64 torch tensor; the
predictions come from :func:`optdyn.theory.risk_ode`. Every function returns a DataFrame; the chapter
plots them and judges the claims with :func:`claims_of`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy import integrate

from .. import theory
from ..claims import ClaimSet, at_least, at_most, between, within

PROFILES: dict[str, dict] = {
    "quick": dict(
        dims=(250, 1000, 4000),
        seeds=2,
        t_conc=6.0,
        d_effect=500,
        t_lr=10.0,
        t_noise=15.0,
        d_diag=1000,
        d_rot=300,
        t_pre=3.0,
        d_cov=60,
        n_cov=40_000,
    ),
    "default": dict(
        dims=(250, 1000, 4000),
        seeds=4,
        t_conc=10.0,
        d_effect=1000,
        t_lr=12.0,
        t_noise=20.0,
        d_diag=2000,
        d_rot=500,
        t_pre=3.0,
        d_cov=100,
        n_cov=100_000,
    ),
    "full": dict(
        dims=(250, 500, 1000, 2000, 4000),
        seeds=10,
        t_conc=12.0,
        d_effect=2000,
        t_lr=12.0,
        t_noise=25.0,
        d_diag=4000,
        d_rot=1000,
        t_pre=3.0,
        d_cov=120,
        n_cov=150_000,
    ),
}

KAPPA = 100.0  # condition number of the structured spectra
CONC = dict(signsgd=0.5, sgd=0.5, noise="gaussian", scale=0.5)  # the concentration experiment
DIVERGED = 1e6  # a risk above this (or not finite) ends a run


def config(profile: str) -> dict:
    """The sizes and step counts of a profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return PROFILES[profile]


def geometric_spectrum(d: int, kappa: float = KAPPA) -> np.ndarray:
    """Eigenvalues from 1 down to 1/κ, geometrically spaced (d of them)."""
    return np.geomspace(1.0, 1.0 / kappa, d)


def random_rotation(d: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def label_noise(noise: str, scale: float, shape, gen: torch.Generator) -> torch.Tensor:
    """Draws of ε: none, Gaussian (std s), Laplace (b), uniform [−a, a], Rademacher (±s), Cauchy (γ)."""
    theory.noise_second_moment(noise, scale)  # validates
    if noise == "none" or scale == 0:
        return torch.zeros(shape, dtype=torch.float64)
    if noise == "gaussian":
        return scale * torch.randn(shape, generator=gen, dtype=torch.float64)
    u = torch.rand(shape, generator=gen, dtype=torch.float64)
    if noise == "uniform":
        return scale * (2 * u - 1)
    if noise == "rademacher":
        return scale * torch.where(u < 0.5, -1.0, 1.0).to(torch.float64)
    if noise == "laplace":
        u = u - 0.5
        return -scale * torch.sign(u) * torch.log1p(-2 * u.abs())
    return scale * torch.tan(math.pi * (u - 0.5))  # cauchy


def simulate(
    spectrum,
    eta: float,
    t_max: float,
    *,
    method: str = "signsgd",
    noise: str = "none",
    scale: float = 0.0,
    seeds: int = 2,
    seed: int = 0,
    rotation: np.ndarray | None = None,
    init_scale: float = 1.0,
    per_unit: int = 10,
    blocks: dict[str, np.ndarray] | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
) -> pd.DataFrame:
    """Streaming SGD / signSGD / Adam on K = O diag(spectrum) Oᵀ (O = I unless ``rotation``), all seeds.

    SGD: θ ← θ − (η/d) r x;  signSGD: θ ← θ − (η/d) sign(r) sign(x), with r = ⟨x, θ⟩ − y;
    Adam (exploration): g = r x, m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², θ ← θ − (η/d) m̂/(√v̂ + 10⁻¹²)
    with bias-corrected m̂, v̂ (β1 = β2 = 0 is signSGD).
    One row per (seed, logged t) with ``per_unit`` logs per unit of t: ``risk`` = ½ δᵀKδ, plus for each
    named index set of ``blocks`` (eigenbasis coordinates) the mean of ⟨u_i, δ⟩² over the set.
    ``diverged_at`` is the first logged t at which the risk of any seed exceeded 10⁶ or was not finite
    (NaN if none); later rows are dropped.
    """
    if method not in ("signsgd", "sgd", "adam"):
        raise ValueError(f"unknown method {method!r}; known: signsgd, sgd, adam")
    lam = np.asarray(spectrum, dtype=float)
    theory.check_covariance(lam)
    if not eta > 0:
        raise ValueError(f"learning rate must be positive, got {eta}")
    d = len(lam)
    gen = torch.Generator().manual_seed(int(seed) * 7919 + d)
    lam_t = torch.tensor(lam, dtype=torch.float64)
    sqrt_lam = lam_t.sqrt()
    O = None if rotation is None else torch.tensor(rotation, dtype=torch.float64)
    S = None if O is None else (O * sqrt_lam) @ O.T
    delta = -init_scale * torch.randn(seeds, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    every = max(1, d // per_unit)
    steps = int(round(t_max * d))
    step = eta / d
    rows: list[dict] = []
    diverged_at = np.nan
    b1, b2 = betas
    m, v = torch.zeros_like(delta), torch.zeros_like(delta)

    def log(k):
        y = delta if O is None else delta @ O
        risk = 0.5 * (y**2 * lam_t).sum(-1)
        for s in range(seeds):
            row = dict(seed=s, t=k / d, risk=float(risk[s]))
            for name, idx in (blocks or {}).items():
                row[name] = float((y[s, idx] ** 2).mean())
            rows.append(row)
        return bool(torch.isfinite(risk).all() and (risk < DIVERGED).all())

    log(0)
    k = 0
    while k < steps and np.isnan(diverged_at):
        n = min(every, steps - k)
        z = torch.randn(n, seeds, d, generator=gen, dtype=torch.float64)
        eps = label_noise(noise, scale, (n, seeds), gen)
        for i in range(n):
            x = z[i] * sqrt_lam if S is None else z[i] @ S
            r = (x * delta).sum(-1) - eps[i]
            if method == "signsgd":
                delta.addcmul_(torch.sign(r)[:, None], torch.sign(x), value=-step)
            elif method == "sgd":
                delta.addcmul_(r[:, None], x, value=-step)
            else:
                g = r[:, None] * x
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                j = k + i + 1
                denom = (v / (1 - b2**j)).sqrt_().add_(1e-12)
                delta.addcdiv_(m, denom, value=-step / (1 - b1**j))
        k += n
        if not log(k):
            diverged_at = k / d
    frame = pd.DataFrame(rows)
    frame["diverged_at"] = diverged_at
    return frame


def _ode(spectrum, eta, t, rotation=None, **kw):
    """The ODE's risk at the (repeated, per-seed) times ``t``."""
    K = spectrum if rotation is None else (rotation * spectrum) @ rotation.T
    grid, where = np.unique(t, return_inverse=True)
    return theory.risk_ode(K, eta, grid, **kw)[1][where]


def concentration(profile: str, seed: int = 0) -> pd.DataFrame:
    """signSGD (η = 0.5) and SGD (η = 0.5) on the geometric spectrum (κ = 100), Gaussian noise s = 0.5, at
    each d of the profile: simulated ``risk`` per seed and the ODE's ``ode`` at the same t."""
    cfg = config(profile)
    frames = []
    for d in cfg["dims"]:
        lam = geometric_spectrum(d)
        for method in ("signsgd", "sgd"):
            kw = dict(method=method, noise=CONC["noise"], scale=CONC["scale"])
            f = simulate(lam, CONC[method], cfg["t_conc"], seeds=cfg["seeds"], seed=seed, **kw)
            f["ode"] = _ode(lam, CONC[method], f["t"].to_numpy(), **kw)
            f["method"], f["d"] = method, d
            frames.append(f)
    return pd.concat(frames, ignore_index=True)


def concentration_gaps(frame: pd.DataFrame, t_min: float = 0.5) -> pd.DataFrame:
    """Per (method, d): the max over t ≥ ``t_min`` of abs(R_sim − R_ode)/R_ode, median and max over seeds."""
    f = frame[frame["t"] >= t_min].assign(gap=lambda x: (x["risk"] - x["ode"]).abs() / x["ode"])
    per_seed = f.groupby(["method", "d", "seed"])["gap"].max().reset_index()
    return per_seed.groupby(["method", "d"])["gap"].agg(["median", "max"]).reset_index()


def effective_lr(profile: str, seed: int = 0, eta: float = 0.5) -> pd.DataFrame:
    """K = I, no label noise: signSGD and SGD at η, simulated and ODE risk, and signSGD's effective
    learning rate η φ(R(t)) along the ODE (column ``eta_eff``)."""
    cfg = config(profile)
    d = cfg["d_effect"]
    lam = np.ones(d)
    frames = []
    for method in ("signsgd", "sgd"):
        f = simulate(lam, eta, cfg["t_lr"], method=method, seeds=cfg["seeds"], seed=seed)
        f["ode"] = _ode(lam, eta, f["t"].to_numpy(), method=method)
        f["eta_eff"] = eta * theory.signsgd_phi(f["ode"]) if method == "signsgd" else eta
        f["method"], f["d"], f["eta"] = method, d, eta
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


NOISE_RUNS = (  # (method, η, noise, scale); the last three have unit variance like Gaussian s = 1
    *[("signsgd", 0.5, "gaussian", s) for s in (0.5, 1.0, 2.0)],
    *[("sgd", 0.2, "gaussian", s) for s in (0.5, 1.0, 2.0)],
    ("signsgd", 0.5, "cauchy", 0.5),
    ("sgd", 0.2, "cauchy", 0.5),
    ("signsgd", 0.5, "laplace", 1 / math.sqrt(2)),
    ("signsgd", 0.5, "uniform", math.sqrt(3)),
    ("signsgd", 0.5, "rademacher", 1.0),
)


def noise_compression(profile: str, seed: int = 0) -> pd.DataFrame:
    """K = I: signSGD (η = 0.5) and SGD (η = 0.2) under the label noises of ``NOISE_RUNS``; simulated and
    ODE risk (the ODE is ∞ for SGD with Cauchy noise)."""
    cfg = config(profile)
    d = cfg["d_effect"]
    lam = np.ones(d)
    frames = []
    for method, eta, noise, scale in NOISE_RUNS:
        kw = dict(method=method, noise=noise, scale=scale)
        f = simulate(lam, eta, cfg["t_noise"], seeds=cfg["seeds"], seed=seed, **kw)
        f["ode"] = _ode(lam, eta, f["t"].to_numpy(), **kw)
        f["method"], f["eta"], f["noise"], f["scale"], f["d"] = method, eta, noise, scale, d
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def floors(frame: pd.DataFrame, last: float = 0.25) -> pd.DataFrame:
    """Per run: the mean risk over the last ``last`` fraction of t (median over seeds; NaN if diverged),
    the ODE over the same window, and the final median risk."""
    t_end = frame.groupby(["method", "noise", "scale"])["t"].transform("max")
    tail = frame[frame["t"] >= (1 - last) * t_end]
    keys = ["method", "eta", "noise", "scale"]
    per_seed = tail.groupby([*keys, "seed"]).agg(sim=("risk", "mean"), ode=("ode", "mean")).reset_index()
    out = per_seed.groupby(keys).agg(floor=("sim", "median"), ode=("ode", "median")).reset_index()
    out["diverged_at"] = frame.groupby(keys)["diverged_at"].first().to_numpy()
    return out


def _blocks(d: int, frac: float = 0.2) -> dict[str, np.ndarray]:
    n = max(1, int(frac * d))
    return {"large": np.arange(n), "small": np.arange(d - n, d)}  # spectrum sorted decreasing


PRECOND_RUNS = (  # (method, η, rotated)
    ("signsgd", 0.2, False),
    ("sgd", 0.5, False),
    ("signsgd", 0.2, True),
    ("sgd", 0.5, True),
)


def preconditioning(profile: str, seed: int = 0, init_scale: float = 3.0) -> pd.DataFrame:
    """Geometric spectrum (κ = 100), no label noise, axis-aligned (d = d_diag) and randomly rotated
    (d = d_rot): risk and the mean ⟨u_i, δ⟩² over the top 20% (``large``) and bottom 20% (``small``) of the
    spectrum, with the ODE's risk and block means (axis-aligned runs)."""
    cfg = config(profile)
    frames = []
    for method, eta, rotated in PRECOND_RUNS:
        d = cfg["d_rot" if rotated else "d_diag"]
        lam = geometric_spectrum(d)
        O = random_rotation(d, seed) if rotated else None
        blocks = _blocks(d)
        f = simulate(
            lam, eta, cfg["t_pre"], method=method, seeds=cfg["seeds"], seed=seed, rotation=O,
            init_scale=init_scale, blocks=blocks,
        )  # fmt: skip
        grid, where = np.unique(f["t"].to_numpy(), return_inverse=True)
        K = lam if O is None else (O * lam) @ O.T
        _, R, r = theory.risk_ode(K, eta, grid, method=method, init_scale=init_scale, modes=True)
        f["ode"], r = R[where], r[where]
        if O is None:  # per-mode energies r_j = λ_j^{1/2} δ_j² (signSGD) or δ_j² (SGD) map back to δ_j²
            r = r / np.sqrt(lam) if method == "signsgd" else r
            for name, idx in blocks.items():
                f[f"{name}_ode"] = r[:, idx].mean(axis=1)
        f["method"], f["eta"], f["rotated"], f["d"] = method, eta, rotated, d
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def block_rates(frame: pd.DataFrame, spectrum_kappa: float = KAPPA) -> pd.DataFrame:
    """Per run: the log-decay of the small and large blocks over the whole window (seed-averaged block
    means), their ratio, the ODE's ratio (axis-aligned runs), and the formulas' ratios
    mean_small(√λ)/mean_large(√λ) (signSGD, diagonal K) and mean_small(λ)/mean_large(λ) (SGD; rotated K)."""
    rows = []
    for (method, eta, rotated, d), f in frame.groupby(["method", "eta", "rotated", "d"]):
        m = f.groupby("t")[["large", "small", *(c for c in ("large_ode", "small_ode") if c in f)]].mean()
        t0, t1 = m.index[0], m.index[-1]
        rate = {c: -np.log(m.loc[t1, c] / m.loc[t0, c]) for c in m.columns}
        lam = geometric_spectrum(d, spectrum_kappa)
        b = _blocks(d)
        lin = lam[b["small"]].mean() / lam[b["large"]].mean()
        sq = np.sqrt(lam[b["small"]]).mean() / np.sqrt(lam[b["large"]]).mean()
        rows.append(
            dict(
                method=method, eta=eta, rotated=rotated, d=d,
                ratio=rate["small"] / rate["large"],
                ode_ratio=rate["small_ode"] / rate["large_ode"] if "small_ode" in rate else np.nan,
                sqrt_formula=sq, linear_formula=lin,
                formula=sq if method == "signsgd" and not rotated else lin,
            )
        )  # fmt: skip
    return pd.DataFrame(rows)


def noise_reshaping(profile: str, seed: int = 0) -> pd.DataFrame:
    """Second moments of the updates at a frozen δ on a rotated geometric K (d = d_cov, n_cov samples):
    for two risk levels × two Gaussian noise levels, ‖Ê[sign g sign gᵀ] − K_σ‖_F/‖K_σ‖_F, the mean diagonal
    of Ê[sign g sign gᵀ], and SGD's tr Ê[g gᵀ] / ((2R + s²) tr K + 2‖Kδ‖²)."""
    cfg = config(profile)
    d, n = cfg["d_cov"], cfg["n_cov"]
    lam = geometric_spectrum(d)
    O = random_rotation(d, seed + 1)
    K = (O * lam) @ O.T
    K_sigma = theory.sign_covariance(K)
    S = torch.tensor((O * np.sqrt(lam)) @ O.T)
    gen = torch.Generator().manual_seed(seed)
    Kt = torch.tensor(K)
    rows = []
    for target_risk in (0.5, 0.05):
        u = torch.randn(d, generator=gen, dtype=torch.float64)
        delta = u * math.sqrt(2 * target_risk / float(u @ Kt @ u))
        R = float(0.5 * delta @ Kt @ delta)
        for s in (0.0, 1.0):
            x = torch.randn(n, d, generator=gen, dtype=torch.float64) @ S
            r = x @ delta - label_noise("gaussian", s, (n,), gen)
            sg = torch.sign(r)[:, None] * torch.sign(x)
            M = (sg.T @ sg / n).numpy()
            g = r[:, None] * x
            kd = Kt @ delta
            rows.append(
                dict(
                    risk=R, noise_scale=s,
                    sign_error=np.linalg.norm(M - K_sigma) / np.linalg.norm(K_sigma),
                    sign_diag=float(np.diag(M).mean()),
                    sampling_error=math.sqrt(((1 - K_sigma**2).sum()) / n) / np.linalg.norm(K_sigma),
                    sgd_ratio=float((g**2).sum() / n) / ((2 * R + s**2) * np.trace(K) + 2 * float(kd @ kd)),
                    sgd_trace=float((g**2).sum() / n),
                )
            )  # fmt: skip
    return pd.DataFrame(rows)


def reshaping_matrices(profile: str, seed: int = 0, risk: float = 0.5, noise_scale: float = 1.0) -> dict:
    """For the heatmaps: D^{-1/2}KD^{-1/2}, K_σ and the empirical Ê[sign g sign gᵀ] at one risk and noise
    level, on the rotated K of :func:`noise_reshaping`."""
    cfg = config(profile)
    d, n = cfg["d_cov"], cfg["n_cov"]
    lam = geometric_spectrum(d)
    O = random_rotation(d, seed + 1)
    K = (O * lam) @ O.T
    gen = torch.Generator().manual_seed(seed)
    Kt = torch.tensor(K)
    u = torch.randn(d, generator=gen, dtype=torch.float64)
    delta = u * math.sqrt(2 * risk / float(u @ Kt @ u))
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) @ torch.tensor((O * np.sqrt(lam)) @ O.T)
    sg = torch.sign(x @ delta - label_noise("gaussian", noise_scale, (n,), gen))[:, None] * torch.sign(x)
    s = 1 / np.sqrt(np.diag(K))
    return {
        "correlation D^{-1/2} K D^{-1/2}": K * s[:, None] * s[None, :],
        "K_σ (theory)": theory.sign_covariance(K),
        "Ê[sign g sign gᵀ] (simulated)": (sg.T @ sg / n).numpy(),
    }


def adam_heuristic_ode(spectrum, eta: float, t, scale: float) -> np.ndarray:
    """Our heuristic (not the paper's) risk curve for streaming Adam with β2 → 1 slowly compared with one
    step but fast compared with d steps, diagonal K, Gaussian noise s: v_i ≈ (2R + s²)λ_i, so the drift is
    signSGD's with φ replaced by (π/2)φ = 1/√(2R + s²), and the update second moment is D^{-1/2}KD^{-1/2} = I:

        dr_j/dt = −2η √λ_j r_j / √(2R + s²) + (η²/d) √λ_j,   r_j = √λ_j δ_j²,   R = ½ Σ √λ_j r_j.

    Momentum (β1) with a memory of ≪ d steps does not change it."""
    lam = np.asarray(spectrum, float)
    d, mu = len(lam), np.sqrt(lam)
    grid, where = np.unique(np.asarray(t, float), return_inverse=True)

    def rhs(_, r):
        return -2 * eta * mu * r / np.sqrt(mu @ r + scale**2) + eta**2 / d * mu

    sol = integrate.solve_ivp(rhs, (grid[0], grid[-1]), mu / d, t_eval=grid, method="LSODA", rtol=1e-7)
    return (0.5 * sol.y.T @ mu)[where]


ADAM_RUNS = (("signsgd", (0.0, 0.0)), ("adam", (0.0, 0.999)), ("adam", (0.9, 0.999)))


def adam_exploration(profile: str, seed: int = 0, eta: float = 0.5, scale: float = 0.5) -> pd.DataFrame:
    """Exploration, not a replicated claim: streaming Adam (β1 ∈ {0, 0.9}, β2 = 0.999) next to signSGD on the
    geometric spectrum (κ = 100) with Gaussian noise s, at each d of the profile, with signSGD's ODE."""
    cfg = config(profile)
    frames = []
    for d in cfg["dims"][:2]:
        lam = geometric_spectrum(d)
        ode = None
        for method, betas in ADAM_RUNS:
            kw = dict(noise="gaussian", scale=scale)
            f = simulate(
                lam, eta, cfg["t_conc"], method=method, seeds=cfg["seeds"], seed=seed, betas=betas, **kw
            )
            ode = _ode(lam, eta, f["t"].to_numpy(), **kw) if ode is None else ode
            f["ode"] = ode
            f["adam_ode"] = adam_heuristic_ode(lam, eta, f["t"].to_numpy(), scale)
            f["run"] = "signSGD" if method == "signsgd" else f"Adam β1={betas[0]:g}, β2={betas[1]:g}"
            f["d"] = d
            frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _fmt_runs(frame: pd.DataFrame, col: str, keys: list[str]) -> str:
    def text(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{'/'.join(text(r[k]) for k in keys)}: {r[col]:.3g}" for _, r in frame.iterrows())


def claims_of(
    conc: pd.DataFrame, lr: pd.DataFrame, noise: pd.DataFrame, pre: pd.DataFrame, reshape: pd.DataFrame
) -> ClaimSet:
    """Judge the chapter's claims on the five experiments' data (criteria fixed in the chapter text)."""
    card = ClaimSet("signsgd_high_dim")
    gaps = concentration_gaps(conc)
    src = "Xiao et al. 2024, Thm 1-2, Fig. 1"
    for method in ("signsgd", "sgd"):
        g = gaps[gaps["method"] == method].sort_values("d")
        lo, hi = g.iloc[0], g.iloc[-1]
        name = "signSGD" if method == "signsgd" else "SGD"
        card.record(
            f"conc-{method}-gap",
            f"{name}: the simulated risk lies on the ODE at the largest d (max relative gap over t ≥ 0.5, "
            f"median over seeds, d = {int(hi['d'])})",
            paper="→ 0 as d → ∞",
            source=src,
            measured=hi["median"],
            rule=at_most(0.10 if method == "signsgd" else 0.15),
            detail=_fmt_runs(g, "median", ["d"]),
        )
        card.record(
            f"conc-{method}-shrinks",
            f"{name}: the gap shrinks with d (gap at d = {int(hi['d'])} / gap at d = {int(lo['d'])})",
            paper=f"√(d_min/d_max) = {math.sqrt(lo['d'] / hi['d']):.2f} (CLT scaling)",
            source=src,
            measured=hi["median"] / lo["median"],
            rule=at_most(0.8),
        )
    sign = lr[lr["method"] == "signsgd"]
    eta = float(sign["eta"].iloc[0])
    u = np.sqrt(2 * sign.groupby("t")["risk"].median())
    u0 = float(u.iloc[0])
    u_half = 0.5 * (u0 + math.pi * eta / 4)
    t_cross = float(u.index[np.argmax(u.to_numpy() <= u_half)]) if (u <= u_half).any() else np.nan
    card.record(
        "lr-linear-sqrt-risk",
        "Effective learning rate (K = I, no noise): √(2R) falls as du/dt = −2η/π + η²/(2u); time to fall "
        "halfway to the floor, simulated / closed form",
        paper=1.0,
        source="Xiao et al. 2024, Sec. 4.1 (closed form derived here)",
        measured=t_cross / float(theory.signsgd_isotropic_time(u_half, eta, u0)),
        rule=between(0.9, 1.1),
        detail=f"u0 = {u0:.3f}, halfway u = {u_half:.3f}, crossed at t = {t_cross:.2f}",
    )
    t_end = sign["t"].max()
    plateau = sign[sign["t"] >= 0.75 * t_end].groupby("seed")["risk"].mean().median()
    card.record(
        "lr-floor",
        "Without label noise signSGD stalls at R* = π²η²/32 (late-time mean / formula)",
        paper=1.0,
        source="Xiao et al. 2024, Sec. 4.1 (closed form derived here)",
        measured=plateau / (math.pi**2 * eta**2 / 32),
        rule=between(0.85, 1.15),
        detail=f"plateau {plateau:.4g}, formula {math.pi**2 * eta**2 / 32:.4g}",
    )
    fl = floors(noise)
    sg = fl[fl["method"] == "signsgd"]
    card.record(
        "noise-ode-floors",
        "signSGD's late-time risk under Gaussian, Cauchy, Laplace, uniform and Rademacher noise matches the "
        "ODE (largest relative error over the noises)",
        paper="ODE floor, via φ only",
        source="Xiao et al. 2024, Thm 2, Sec. 4.2",
        measured=float(((sg["floor"] - sg["ode"]).abs() / sg["ode"]).max()),
        rule=at_most(0.15),
        detail=_fmt_runs(sg.assign(rel=(sg["floor"] / sg["ode"])), "rel", ["noise", "scale"]),
    )

    def gfloor(method, s):
        row = fl[(fl["method"] == method) & (fl["noise"] == "gaussian") & (fl["scale"] == s)]
        return float(row["floor"].iloc[0])

    card.record(
        "noise-sign-linear",
        "Noise compression: doubling a Gaussian noise's std (s = 1 → 2) about doubles signSGD's floor",
        paper="≈ 2 (floor ≈ πηs/8, linear in s)",
        source="Xiao et al. 2024, Sec. 4.2 (Thm 3)",
        measured=gfloor("signsgd", 2.0) / gfloor("signsgd", 1.0),
        rule=between(1.5, 2.5),
    )
    card.record(
        "noise-sgd-quadratic",
        "…while it quadruples SGD's floor (ηs²/(2(2 − η)), quadratic in s)",
        paper=4.0,
        source="Xiao et al. 2024, Sec. 4.2",
        measured=gfloor("sgd", 2.0) / gfloor("sgd", 1.0),
        rule=between(3.4, 4.6),
    )
    cs = fl[(fl["noise"] == "cauchy")].set_index("method")
    sgd_cauchy = noise[(noise["method"] == "sgd") & (noise["noise"] == "cauchy")]
    worst = sgd_cauchy.groupby("seed")["risk"].max().median()
    card.record(
        "noise-cauchy",
        "Cauchy noise (infinite variance): SGD's risk blows up or is erratic, signSGD's stays at its finite "
        "ODE floor (median over seeds of SGD's largest risk / signSGD's floor)",
        paper="≫ 1",
        source="Xiao et al. 2024, Sec. 4.2",
        measured=worst / float(cs.loc["signsgd", "floor"]),
        rule=at_least(10.0),
        detail=f"signSGD floor {cs.loc['signsgd', 'floor']:.3g} (ODE {cs.loc['signsgd', 'ode']:.3g}); "
        f"SGD largest risk {worst:.3g}",
    )
    order = ["laplace", "gaussian", "uniform", "rademacher"]
    unit = sg[sg["noise"].isin(order) & ((sg["noise"] != "gaussian") | (sg["scale"] == 1.0))]
    vals = [float(unit.loc[unit["noise"] == k, "floor"].iloc[0]) for k in order]
    card.record(
        "noise-density-order",
        "At equal variance the signSGD floors are ordered by the noise density at 0: Laplace < Gaussian < "
        "uniform < Rademacher (fraction of the 3 neighbouring pairs in that order)",
        paper=1.0,
        source="derived from Xiao et al. 2024, Sec. 4.2 (φ depends on p_ε(0))",
        measured=float(np.mean(np.diff(vals) > 0)),
        rule=at_least(1.0),
        detail=", ".join(f"{k} {v:.3g}" for k, v in zip(order, vals, strict=True)),
    )
    br = block_rates(pre)
    for _, row in br.iterrows():
        name = "signSGD" if row["method"] == "signsgd" else "SGD"
        geometry = "rotated K" if row["rotated"] else "diagonal K"
        law = "√λ" if row["method"] == "signsgd" and not row["rotated"] else "λ"
        card.record(
            f"precond-{row['method']}-{'rotated' if row['rotated'] else 'diagonal'}",
            f"Preconditioning, {name}, {geometry} (κ = 100): small-λ block decays at the {law} ratio "
            "(small/large block log-decay ratio / formula)",
            paper=1.0,
            source="Xiao et al. 2024, Sec. 4.3",
            measured=row["ratio"] / row["formula"],
            rule=between(0.7, 1.3) if not row["rotated"] else between(0.5, 2.0),
            detail=f"ratio {row['ratio']:.3g}; √λ formula {row['sqrt_formula']:.3g}, λ formula "
            f"{row['linear_formula']:.3g}"
            + (f", ODE {row['ode_ratio']:.3g}" if np.isfinite(row["ode_ratio"]) else ""),
        )
    card.record(
        "reshape-ksigma",
        "Noise reshaping: E[sign g sign gᵀ] = K_σ = (2/π) arcsin(D^{-1/2}KD^{-1/2}) at every risk and noise "
        "level (largest relative Frobenius error over 4 settings)",
        paper="K_σ",
        source="Xiao et al. 2024, Sec. 4.4",
        measured=float(reshape["sign_error"].max()),
        rule=at_most(0.05),
        detail=f"sampling error alone ≈ {reshape['sampling_error'].max():.3f}; mean diagonal "
        f"{reshape['sign_diag'].min():.4f} to {reshape['sign_diag'].max():.4f}",
    )
    card.record(
        "reshape-sgd-scales",
        "…while SGD's update second moment scales with 2R + E ε² "
        "(tr Ê[ggᵀ] / ((2R + s²)tr K + 2‖Kδ‖²), worst)",
        paper=1.0,
        source="Xiao et al. 2024, Sec. 4.4",
        measured=float(reshape["sgd_ratio"].iloc[(reshape["sgd_ratio"] - 1).abs().argmax()]),
        rule=within(1.0, 0.05),
        detail=f"tr Ê[ggᵀ] from {reshape['sgd_trace'].min():.3g} to {reshape['sgd_trace'].max():.3g}",
    )
    return card


def adam_gaps(frame: pd.DataFrame, t_min: float = 0.5) -> pd.DataFrame:
    """Per (d, run) of :func:`adam_exploration`: the largest relative gap over t ≥ ``t_min`` of the median
    simulated risk to our heuristic Adam ODE and to signSGD's ODE."""
    f = frame[frame["t"] >= t_min]
    med = f.groupby(["d", "run", "t"])[["risk", "ode", "adam_ode"]].median().reset_index()
    med["gap_heuristic_adam_ode"] = (med["risk"] / med["adam_ode"] - 1).abs()
    med["gap_signsgd_ode"] = (med["risk"] / med["ode"] - 1).abs()
    return med.groupby(["d", "run"])[["gap_heuristic_adam_ode", "gap_signsgd_ode"]].max().reset_index()
