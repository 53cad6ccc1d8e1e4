"""signSGD / SGD risk ODEs against closed forms, Monte Carlo and direct simulation (Xiao et al. 2024)."""

import numpy as np
import pandas as pd
import pytest
import torch

from optdyn import theory
from optdyn.experiments import signsgd_high_dim as sg


def test_isotropic_noiseless_signsgd_matches_closed_form():
    eta, t = 0.5, np.linspace(0, 30, 601)
    _, R = theory.risk_ode(np.ones(300), eta, t)
    u = np.sqrt(2 * R)
    assert u[0] == pytest.approx(1.0)
    early = u > 1.05 * np.pi * eta / 4  # before the floor, where t(u) is well conditioned
    assert np.allclose(theory.signsgd_isotropic_time(u[early], eta, 1.0), t[early], atol=1e-4)
    assert R[-1] == pytest.approx(np.pi**2 * eta**2 / 32, rel=1e-3)


def test_isotropic_sgd_matches_exponential_closed_form():
    eta, s, t = 0.5, 1.0, np.linspace(0, 8, 50)
    _, R = theory.risk_ode(np.ones(200), eta, t, method="sgd", noise="gaussian", scale=s)
    floor = eta * s**2 / (2 * (2 - eta))
    assert theory.isotropic_floor(eta, "sgd", "gaussian", s) == pytest.approx(floor)
    assert np.allclose(R, floor + (0.5 - floor) * np.exp(-(2 * eta - eta**2) * t), rtol=1e-5)


@pytest.mark.parametrize("s", [0.5, 1.0, 2.0])
def test_gaussian_signsgd_floor_solves_fixed_point(s):
    eta = 0.5
    floor = theory.isotropic_floor(eta, "signsgd", "gaussian", s)
    assert floor / np.sqrt(2 * floor + s**2) == pytest.approx(np.pi * eta / 8)
    _, R = theory.risk_ode(np.ones(100), eta, [0, 80], noise="gaussian", scale=s)
    assert R[-1] == pytest.approx(floor, rel=1e-3)


@pytest.mark.parametrize(
    "noise,scale",
    [("gaussian", 0.7), ("laplace", 0.6), ("uniform", 1.5), ("rademacher", 0.8), ("cauchy", 0.4)],
)
def test_phi_closed_forms_against_monte_carlo(noise, scale):
    eps = sg.label_noise(noise, scale, (400_000,), torch.Generator().manual_seed(1)).numpy()
    for R in (0.05, 0.5, 2.0):
        mc = (2 / np.pi) * np.mean(np.exp(-(eps**2) / (4 * R))) / np.sqrt(2 * R)
        assert theory.signsgd_phi(R, noise, scale) == pytest.approx(mc, rel=0.01)


def test_phi_is_the_drift_of_sign_updates():
    """E[sign(r x)] = φ(R) Kδ/√diag K, measured by Monte Carlo on a diagonal K with Laplace noise."""
    d, n, gen = 100, 400_000, torch.Generator().manual_seed(2)
    lam = np.geomspace(1, 0.1, d)
    delta = torch.randn(d, generator=gen, dtype=torch.float64) / np.sqrt(d)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.tensor(np.sqrt(lam))
    r = x @ delta - sg.label_noise("laplace", 0.5, (n,), gen)
    mean = (torch.sign(r)[:, None] * torch.sign(x)).mean(0).numpy()
    predicted_direction = np.sqrt(lam) * delta.numpy()
    slope = mean @ predicted_direction / (predicted_direction @ predicted_direction)
    R = 0.5 * float((lam * delta.numpy() ** 2).sum())
    assert slope == pytest.approx(theory.signsgd_phi(R, "laplace", 0.5), rel=0.05)


def test_sign_covariance_against_monte_carlo():
    d, n = 20, 200_000
    O = sg.random_rotation(d, 3)
    K = (O * np.geomspace(1, 0.05, d)) @ O.T
    ks = theory.sign_covariance(K)
    assert np.allclose(np.diag(ks), 1.0)
    x = np.random.default_rng(0).multivariate_normal(np.zeros(d), K, size=n)
    empirical = np.sign(x).T @ np.sign(x) / n
    assert np.abs(empirical - ks).max() < 5 / np.sqrt(n)
    assert np.array_equal(theory.sign_covariance(np.ones(4)), np.eye(4))


def _max_gap(spectrum, eta, method, rotation=None, seeds=4, t_max=4.0, **noise):
    f = sg.simulate(spectrum, eta, t_max, method=method, seeds=seeds, rotation=rotation, **noise)
    K = spectrum if rotation is None else (rotation * spectrum) @ rotation.T
    grid = np.unique(f["t"])
    _, R = theory.risk_ode(K, eta, grid, method=method, **noise)
    f = f.merge(pd.DataFrame({"t": grid, "ode": R}), on="t")
    f = f[f["t"] >= 0.5]
    return float(((f["risk"] - f["ode"]).abs() / f["ode"]).groupby(f["seed"]).max().median())


@pytest.mark.parametrize("method,eta", [("signsgd", 0.5), ("sgd", 0.5)])
def test_ode_matches_monte_carlo_with_tolerance_shrinking_in_d(method, eta):
    """Median over seeds of the max relative gap < 5/√d at two d (CLT scaling; about 3/√d measured)."""
    noise = dict(noise="gaussian", scale=0.5)
    gaps = {d: _max_gap(np.geomspace(1, 0.1, d), eta, method, **noise) for d in (200, 1600)}
    for d, gap in gaps.items():
        assert gap < 5.0 / np.sqrt(d), gaps
    assert gaps[1600] < gaps[200]


def test_ode_matches_monte_carlo_for_rotated_covariance():
    """Off-diagonal K_σ and D ≠ λ: the generic-K branch of the signSGD ODE."""
    d = 300
    O = sg.random_rotation(d, 0)
    gap = _max_gap(np.geomspace(1, 0.01, d), 0.5, "signsgd", rotation=O, seeds=2, t_max=3.0)
    assert gap < 5.0 / np.sqrt(d)


def test_invalid_inputs_give_clear_errors():
    t = [0.0, 1.0]
    with pytest.raises(ValueError, match="not positive semi-definite"):
        theory.risk_ode(np.array([[1.0, 2.0], [2.0, 1.0]]), 0.1, t)
    with pytest.raises(ValueError, match="not symmetric"):
        theory.risk_ode(np.array([[1.0, 0.5], [0.0, 1.0]]), 0.1, t)
    with pytest.raises(ValueError, match="positive definite"):
        theory.risk_ode(np.array([1.0, -0.1]), 0.1, t)
    with pytest.raises(ValueError, match="non-negative"):
        theory.risk_ode(np.ones(3), 0.1, t, noise="gaussian", scale=-1.0)
    with pytest.raises(ValueError, match="unknown label noise"):
        theory.signsgd_phi(1.0, "student", 1.0)
    with pytest.raises(ValueError, match="positive"):
        theory.risk_ode(np.ones(3), 0.0, t)
    with pytest.raises(ValueError, match="stability limit"):
        theory.risk_ode(np.ones(10), 2.5, t, method="sgd")
    with pytest.raises(ValueError, match="non-negative"):
        sg.simulate(np.ones(10), 0.1, 1.0, noise="cauchy", scale=-0.5)


def test_stability_limit_separates_stable_from_diverging_simulations():
    lam = np.geomspace(1, 0.1, 400)
    limit = theory.sgd_stability_limit(lam)
    assert limit == pytest.approx(2 * len(lam) / lam.sum())
    stable = sg.simulate(lam, 0.6 * limit, 20.0, method="sgd", seeds=2)
    assert np.isnan(stable["diverged_at"].iloc[0]) and stable["risk"].iloc[-2:].max() < 1.0
    diverged = sg.simulate(lam, 1.5 * limit, 40.0, method="sgd", seeds=2)
    at = diverged["diverged_at"].iloc[0]
    assert np.isfinite(at) and at < 40.0 and diverged["t"].max() == pytest.approx(at)


def test_adam_with_no_averaging_is_signsgd():
    lam = np.geomspace(1, 0.1, 50)
    a = sg.simulate(lam, 0.3, 1.0, method="adam", betas=(0.0, 0.0), seed=5)
    s = sg.simulate(lam, 0.3, 1.0, method="signsgd", seed=5)
    assert np.allclose(a["risk"], s["risk"], rtol=1e-6)
