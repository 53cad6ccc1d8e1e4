"""Closed forms and ODEs the chapters compare measurements with, one module per paper.

``stability``: thresholds of first-order methods on a quadratic. ``signsgd``: risk ODEs of signSGD and SGD
in high dimensions. ``clipping``: the descent and variance factors of clipped SGD in the same model.
``second_order``: the two-parameter second-order regression model reduced to a map in two variables.
Every public name is re-exported here: ``optdyn.theory.risk_ode`` is
``optdyn.theory.signsgd.risk_ode``.
"""

from .clipping import (
    best_schedule_risk,
    clipped_comparison_ratio,
    clipped_stability_ratio,
    clipping_factors,
    clipping_nu,
    isotropic_clipped_floor,
    isotropic_clipped_rate,
    tabulated_factors,
)
from .linear_network import (
    LinearNetProblem,
    balanced_r_med,
    linear_net_hessian_diagonal,
    linear_net_init,
    linear_net_loss,
    linear_net_problem,
    unit_imbalance,
)
from .sam import (
    QuadraticRegressionModel,
    quadratic_regression_model,
    sam_threshold,
    simulate_sam,
    usam_multiplier,
    usam_threshold,
)
from .signsgd import (
    NOISES,
    check_covariance,
    isotropic_floor,
    noise_second_moment,
    risk_ode,
    sgd_stability_limit,
    sign_covariance,
    signsgd_isotropic_time,
    signsgd_phi,
)
from .stability import METHODS, adam_threshold, stability_threshold
from .tuners import model_regimes, model_summary, tuner_model

__all__ = [
    "QuadraticRegressionModel",
    "quadratic_regression_model",
    "sam_threshold",
    "simulate_sam",
    "usam_multiplier",
    "usam_threshold",
    "METHODS",
    "NOISES",
    "adam_threshold",
    "check_covariance",
    "isotropic_floor",
    "noise_second_moment",
    "risk_ode",
    "sgd_stability_limit",
    "sign_covariance",
    "signsgd_isotropic_time",
    "signsgd_phi",
    "stability_threshold",
]
__all__ += ["model_regimes", "model_summary", "tuner_model"]
__all__ += ["LinearNetProblem", "balanced_r_med", "linear_net_hessian_diagonal", "linear_net_init"]
__all__ += ["linear_net_loss", "linear_net_problem", "unit_imbalance"]
from .second_order import (  # noqa: E402
    flattest_sharpness,
    normal_form_flow,
    normal_form_invariant,
    normal_form_limit,
    reduced_map,
    reduced_step,
    reduced_variables,
    saddle_value,
)

__all__ += ["flattest_sharpness", "normal_form_flow", "normal_form_invariant", "normal_form_limit"]
__all__ += ["reduced_map", "reduced_step", "reduced_variables", "saddle_value"]
__all__ += ["best_schedule_risk", "clipped_comparison_ratio", "clipped_stability_ratio", "clipping_factors"]
__all__ += ["clipping_nu", "isotropic_clipped_floor", "isotropic_clipped_rate", "tabulated_factors"]
