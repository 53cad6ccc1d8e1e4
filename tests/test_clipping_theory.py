"""Clipped-SGD factors, criteria and risk ODE (Marshall et al. 2024) against closed forms, quadrature, Monte
Carlo and direct simulation; the shared simulator's update rules against hand-computed steps."""

import math

import numpy as np
import pytest
import torch

from optdyn import theory
from optdyn.experiments import clipping_high_dim as ch
from optdyn.experiments import signsgd_high_dim as sg

R_VALUES = np.array([0.01, 0.1, 0.5, 2.0])


@pytest.mark.parametrize("clip", [0.1, 0.5, 1.0, 4.0])
def test_gaussian_closed_form_equals_quadrature(clip):
    for s in (0.5, 1.0):
        closed = theory.clipping_factors(R_VALUES, clip, "gaussian", s)
        quad = theory.clipping_factors(R_VALUES, clip, "gaussian", s, quadrature=True)
        np.testing.assert_allclose(closed, quad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "noise,scale", [("gaussian", 1.0), ("student_t3", 1.0), ("cauchy", 0.7), ("laplace", 0.5)]
)
def test_factors_against_monte_carlo(noise, scale):
    """μ = P(|u − ε| ≤ c̃), E[ψ²] = E[min(r², c̃²)] from 10⁶ draws of u ~ N(0, 2R) and the simulator's ε."""
    n, gen = 1_000_000, torch.Generator().manual_seed(3)
    eps = sg.label_noise(noise, scale, (n,), gen).numpy()
    z = torch.randn(n, generator=gen, dtype=torch.float64).numpy()
    for R in (0.05, 1.0):
        r = math.sqrt(2 * R) * z - eps
        for clip in (0.3, 2.0):
            mu, psi2 = theory.clipping_factors(R, clip, noise, scale)
            mu_mc = np.mean(np.abs(r) <= clip)
            assert abs(mu - mu_mc) < 5 * math.sqrt(mu_mc * (1 - mu_mc) / n)
            psi2_mc = np.minimum(r**2, clip**2)
            assert abs(psi2 - psi2_mc.mean()) < 5 * psi2_mc.std() / math.sqrt(n)


def test_factors_limits():
    mu, psi2 = theory.clipping_factors(R_VALUES, np.inf, "student_t3", 1.0)
    assert np.all(mu == 1) and np.allclose(psi2, 2 * R_VALUES + 3.0)
    mu, psi2 = theory.clipping_factors(R_VALUES, 1e4, "gaussian", 1.0)  # nothing clipped
    assert np.allclose(mu, 1) and np.allclose(psi2, 2 * R_VALUES + 1.0)
    mu, _ = theory.clipping_factors(1e-8, 0.5, "cauchy", 1.0)  # u → 0: P(|ε| ≤ c̃)
    assert mu == pytest.approx(2 / np.pi * np.arctan(0.5), rel=1e-4)
    assert np.all(theory.clipping_nu(R_VALUES, 1.0, "cauchy", 1.0) == 0)
    assert np.all(np.isinf(theory.clipped_comparison_ratio(R_VALUES, 1.0, "cauchy", 1.0)))


def test_gaussian_comparison_ratio_never_exceeds_one_and_small_clip_limits():
    c, R = np.meshgrid(np.geomspace(1e-3, 1e3, 200), np.geomspace(1e-5, 1e3, 200))
    assert theory.clipped_comparison_ratio(R, c, "gaussian", 1.0).max() <= 1 + 1e-9
    # small c̃: μ²/ν → 2/π, μ/ν ≈ √(2/π) σ/c̃ (the chapter's first exercise)
    R, clip = 0.5, 1e-4
    sigma = math.sqrt(2 * R + 1)
    assert theory.clipped_comparison_ratio(R, clip) == pytest.approx(2 / np.pi, rel=1e-3)
    assert theory.clipped_stability_ratio(R, clip) == pytest.approx(
        math.sqrt(2 / np.pi) * sigma / clip, rel=1e-3
    )
    assert ch.factors(R_values=(0.05,), clips=[0.5, 1.0, 2.0]).query("law == 'Student-t3'")["ccc"].max() > 1


def test_tabulated_factors_match_quadrature_between_grid_points():
    R = np.geomspace(2e-3, 50, 37)
    for noise in ("student_t3", "cauchy"):
        exact = theory.clipping_factors(R, 0.7, noise, 1.0)
        table = theory.tabulated_factors(R, 0.7, noise, 1.0)
        np.testing.assert_allclose(table, exact, rtol=2e-3)


def test_clipped_ode_without_clipping_is_the_sgd_ode_and_reaches_its_floor():
    t = np.linspace(0, 30, 61)
    _, sgd = theory.risk_ode(np.ones(50), 0.4, t, method="sgd", noise="gaussian", scale=1.0)
    _, big = theory.risk_ode(np.ones(50), 0.4, t, method="clipped", clip=1e3, noise="gaussian", scale=1.0)
    np.testing.assert_allclose(big, sgd, rtol=1e-5)
    for noise in ("gaussian", "student_t3", "cauchy"):
        _, R = theory.risk_ode(np.ones(20), 0.5, [0, 80], method="clipped", clip=0.8, noise=noise, scale=1.0)
        assert R[-1] == pytest.approx(theory.isotropic_clipped_floor(0.5, 0.8, noise, 1.0), rel=1e-4)
    assert theory.isotropic_clipped_floor(0.5, np.inf, "gaussian", 1.0) == pytest.approx(0.5 / 3)
    assert theory.isotropic_clipped_floor(0.5, np.inf, "cauchy", 1.0) == np.inf


def test_best_schedule_closed_form_and_optimality():
    """SGD, Gaussian s: t = ln(R0/R) + (s²/2)(1/R − 1/R0); no constant η ends lower."""
    t = np.linspace(0, 10, 101)
    _, R, eta = theory.best_schedule_risk(t, np.inf, "gaussian", 1.0, R0=0.5)
    np.testing.assert_allclose(np.log(0.5 / R) + 0.5 * (1 / R - 2), t, atol=1e-4)
    np.testing.assert_allclose(eta, 2 * R / (2 * R + 1), rtol=1e-6)
    for e in (0.05, 0.1, 0.2, 0.5, 1.0):
        assert theory.risk_ode(np.ones(1), e, t, method="sgd", noise="gaussian", scale=1.0)[1][-1] >= R[-1]
    _, flat, eta = theory.best_schedule_risk(t, np.inf, "cauchy", 1.0)
    assert np.allclose(flat, 0.5) and np.all(eta == 0)


def test_clipped_rule_is_the_clipped_gradient():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    r = torch.tensor([0.1, -2.0, 5.0], dtype=torch.float64)
    c = torch.tensor([1.0, 1.0, 100.0])
    out = sg.clipped_rule(c.numpy())(r, x)
    for i in range(3):
        g = r[i] * x[i]
        expected = g * min(1.0, float(c[i] / g.norm()))
        assert torch.allclose(out[i], expected)
    assert torch.allclose(sg.clipped_rule(np.inf)(r, x), sg.sgd_rule(r, x))
    with pytest.raises(ValueError, match="positive"):
        sg.clipped_rule(0.0)


def test_simulate_per_row_learning_rates_and_common_samples():
    lam = np.ones(30)
    both = sg.simulate(lam, [0.1, 0.3], 1.0, method="sgd", seeds=2, seed=4, common=True)
    assert np.allclose(both.attrs["delta0"][0], both.attrs["delta0"][1])
    for j, eta in enumerate((0.1, 0.3)):  # a row with common samples = that η alone (same stream, 1 row)
        alone = sg.simulate(lam, eta, 1.0, method="sgd", seeds=1, seed=4, common=True)
        assert np.allclose(both[both["seed"] == j]["risk"].to_numpy(), alone["risk"].to_numpy())
    with pytest.raises(ValueError, match="learning rates given"):
        sg.simulate(lam, [0.1, 0.2, 0.3], 1.0, seeds=2)


def _median_gap(d, noise, rows=4, t_max=4.0):
    f = ch.run_grid(d, t_max, noise, [0.5] * rows, [1.0] * rows, seed=0)
    f = f[f["t"] >= 0.5]
    return float(((f["risk"] / f["ode"] - 1).abs()).groupby(f["run"]).median().median())


@pytest.mark.parametrize("noise", ["Gaussian", "Cauchy"])
def test_ode_matches_simulation_with_gap_shrinking_in_d(noise):
    """Median over runs of the median relative gap < 3/√d at two d, and smaller at the larger d."""
    gaps = {d: _median_gap(d, noise) for d in (150, 1200)}
    for d, gap in gaps.items():
        assert gap < 3.0 / math.sqrt(d), gaps
    assert gaps[1200] < gaps[150], gaps


def test_bad_inputs():
    with pytest.raises(ValueError, match="threshold must be positive"):
        theory.clipping_factors(0.5, -1.0)
    with pytest.raises(ValueError, match="risk R must be positive"):
        theory.clipping_factors(0.0, 1.0)
    with pytest.raises(ValueError, match="threshold must be positive"):
        theory.risk_ode(np.ones(3), 0.1, [0, 1], method="clipped", clip=0.0)
    with pytest.raises(ValueError, match="unknown label noise"):
        theory.clipping_factors(0.5, 1.0, "student", 1.0)
    with pytest.raises(ValueError, match="unknown profile"):
        ch.config("huge")
    with pytest.raises(ValueError, match="unknown noise law"):
        ch.run_grid(10, 1.0, "Laplace", [0.1], [1.0], seed=0)
    with pytest.raises(ValueError, match="never both"):
        ch.run_grid(10, 1.0, "Gaussian", [0.1, 0.1], [1.0, np.inf], seed=0)
