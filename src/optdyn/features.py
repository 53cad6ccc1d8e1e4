"""Neural feature matrices, average gradient outer products and their correlation (the neural feature ansatz).

For a bias-free MLP ``h_l = W_l x_l``, ``x_{l+1} = φ(h_l)``, ``f = A x_{L+1}`` (an ``nn.Sequential`` of
``nn.Linear`` and activation modules, the last ``Linear`` being the readout), over inputs ``x_1, …, x_n``:

- neural feature matrix (NFM) of hidden layer l: ``F_l = W_lᵀ W_l``;
- average gradient outer product (AGOP): ``G_l = (1/n) Σ_i Σ_c ∇_{x_l} f_c(x_i) ∇_{x_l} f_c(x_i)ᵀ``
  (:func:`agops`, from per-example input Jacobians);
- pre-activation tangent (PTK) feature covariance ``K_l = (1/n) Σ_i Σ_c ∇_{h_l} f_c ∇_{h_l} f_cᵀ``
  (:func:`ptk_covariances`). By the chain rule ``∇_{x_l} f = W_lᵀ ∇_{h_l} f``, hence ``G_l = W_lᵀ K_l W_l``;
- NFA correlation ``ρ(F_l, G_l)`` (uncentered, UC-NFA) and the centered NFA (C-NFA)
  ``ρ(ΔW_lᵀ ΔW_l, ΔW_lᵀ K_l ΔW_l)`` with ``ΔW_l = W_l − W_l(0)`` and ``K_l`` at the current weights
  (:func:`nfa_stats`). Beaglehole, Mitliagkas & Agarwala (2024) call them UC-NFC and C-NFC in their journal
  version.

Per-example Jacobians are taken as in the authors' code: a zero perturbation is added at the point of
interest (the pre-activation ``h_l`` or the layer input ``x_l``) and ``torch.func.jacrev`` differentiates the
output with respect to it, under ``torch.func.vmap`` over examples, in chunks.

The correlation ρ has two conventions (:func:`correlation`): the cosine of the flattened matrices, and the
authors' ``mat_cov``, which first subtracts the mean of all entries of each matrix (the Pearson correlation of
the entries). The book reports the authors' (``"pearson"``) and records the cosine beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import jacrev, vmap

#: Conventions of :func:`correlation`: the authors' mean-subtracted one (reported) and the plain cosine.
CONVENTIONS = ("pearson", "cosine")


def correlation(A: torch.Tensor, B: torch.Tensor, convention: str = "pearson") -> float:
    """ρ(A, B) = ⟨A, B⟩_F / (‖A‖_F ‖B‖_F) of the flattened matrices.

    ``"pearson"``: the mean of all entries of each matrix is subtracted first (the authors' ``mat_cov``);
    ``"cosine"``: no subtraction. NaN when a (centred) matrix is zero.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"correlation: unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    a = A.reshape(-1).to(torch.float64)
    b = B.reshape(-1).to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"correlation: shapes {tuple(A.shape)} and {tuple(B.shape)} differ")
    if convention == "pearson":
        a, b = a - a.mean(), b - b.mean()
    norm = float(a.norm() * b.norm())
    return float(a @ b) / norm if norm > 0 else math.nan


# ------------------------------------------------------------------------------------------- Jacobians


def hidden_linears(model: nn.Sequential) -> list[nn.Linear]:
    """The weight layers W_1 … W_L of an MLP: every ``nn.Linear`` but the last (the readout)."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    if len(linears) < 2:
        raise ValueError("hidden_linears: need an nn.Sequential with at least one hidden nn.Linear")
    return linears[:-1]


def _forward(model: nn.Sequential, x: torch.Tensor, eps: Sequence[torch.Tensor], where: str) -> torch.Tensor:
    """f(x) with ``eps[l]`` added to the input (``where="input"``) or output (``"pre"``) of hidden layer l."""
    layer = 0
    for module in model:
        if isinstance(module, nn.Linear) and layer < len(eps):
            if where == "input":
                x = module(x + eps[layer])
            else:
                x = module(x) + eps[layer]
            layer += 1
        else:
            x = module(x)
    return x


def layer_jacobians(
    model: nn.Sequential, X: torch.Tensor, where: str = "pre", chunk: int = 512
) -> list[torch.Tensor]:
    """Per-example Jacobians of the outputs, one tensor (n, c, width) per hidden layer.

    ``where="pre"``: ∂f/∂h_l (pre-activations, width k_l); ``where="input"``: ∂f/∂x_l (the layer's input,
    width d_l). ``vmap`` over examples of ``jacrev`` with respect to zero perturbations.
    """
    if where not in ("pre", "input"):
        raise ValueError(f"layer_jacobians: where must be 'pre' or 'input', got {where!r}")
    layers = hidden_linears(model)
    sizes = [m.out_features if where == "pre" else m.in_features for m in layers]
    eps = tuple(torch.zeros(s, dtype=X.dtype, device=X.device) for s in sizes)

    def one(x: torch.Tensor, e: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return jacrev(lambda p: _forward(model, x, p, where))(e)

    per_layer: list[list[torch.Tensor]] = [[] for _ in layers]
    for Xc in X.split(chunk):
        out = vmap(one, in_dims=(0, None))(Xc, eps)
        for store, jac in zip(per_layer, out, strict=True):
            store.append(jac.detach())
    return [torch.cat(parts) for parts in per_layer]


def _second_moments(jacobians: list[torch.Tensor]) -> list[torch.Tensor]:
    """(1/n) Σ_i Σ_c J_ic J_icᵀ of each (n, c, width) tensor."""
    return [torch.einsum("ncj,nck->jk", J, J) / J.shape[0] for J in jacobians]


def ptk_covariances(model: nn.Sequential, X: torch.Tensor, chunk: int = 512) -> list[torch.Tensor]:
    """K_l = (1/n) Σ_i Σ_c ∇_{h_l} f_c(x_i) ∇_{h_l} f_c(x_i)ᵀ for every hidden layer (k_l × k_l)."""
    return _second_moments(layer_jacobians(model, X, "pre", chunk))


def agops(model: nn.Sequential, X: torch.Tensor, chunk: int = 512) -> list[torch.Tensor]:
    """G_l = (1/n) Σ_i Σ_c ∇_{x_l} f_c(x_i) ∇_{x_l} f_c(x_i)ᵀ computed directly from the input Jacobians."""
    return _second_moments(layer_jacobians(model, X, "input", chunk))


def weights(model: nn.Sequential) -> list[torch.Tensor]:
    """Copies of W_1 … W_L (hidden layers, readout excluded)."""
    return [m.weight.detach().clone() for m in hidden_linears(model)]


# ----------------------------------------------------------------------------------------- statistics


def nfa(W: torch.Tensor, K: torch.Tensor, convention: str = "pearson") -> float:
    """ρ(Wᵀ W, Wᵀ K W): the NFA correlation of a weight matrix W (k × d) with PTK covariance K (k × k)."""
    return correlation(W.T @ W, W.T @ K @ W, convention)


def nfa_stats(
    model: nn.Sequential, initial: Sequence[torch.Tensor], X: torch.Tensor, chunk: int = 512
) -> list[dict]:
    """One dict per hidden layer l (1-based): ``uc_nfa`` = ρ(F_l, G_l), ``c_nfa`` = ρ(ΔWᵀΔW, ΔWᵀ K_l ΔW) in
    the authors' convention, ``uc_cos``/``c_cos`` the cosine ones, ``rel_dw`` = ‖ΔW_l‖_F/‖W_l‖_F (current W,
    as the authors) and ``dw_w0`` = ‖ΔW_l‖_F/‖W_l(0)‖_F; K_l on ``X`` at the current weights."""
    rows = []
    for layer, (W, W0, K) in enumerate(
        zip(weights(model), initial, ptk_covariances(model, X, chunk), strict=True), start=1
    ):
        dW = W - W0
        moved = float(dW.norm()) > 0
        rows.append(
            dict(
                layer=layer,
                uc_nfa=nfa(W, K, "pearson"),
                c_nfa=nfa(dW, K, "pearson") if moved else math.nan,
                uc_cos=nfa(W, K, "cosine"),
                c_cos=nfa(dW, K, "cosine") if moved else math.nan,
                rel_dw=float(dW.norm() / W.norm()),
                dw_w0=float(dW.norm() / W0.norm()),
            )
        )
    return rows


def random_eigenvectors(K: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Q diag(λ) Qᵀ: the eigenvalues λ of the symmetric K with Haar-random orthonormal eigenvectors Q."""
    lam = torch.linalg.eigvalsh(K)
    G = torch.randn(K.shape, generator=generator, dtype=K.dtype)
    Q, R = torch.linalg.qr(G)
    Q = Q * torch.sign(torch.diagonal(R))  # Haar measure (sign fix of the QR factor)
    return (Q * lam) @ Q.T


def alignment_spectrum(W: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values s_j of W = U S Vᵀ (descending) and the K-energy u_jᵀ K u_j / (tr K / k) of each left
    singular vector (1 on average for a direction unrelated to K; the NFA is high when the large s_j have
    large K-energy)."""
    U, S, _ = torch.linalg.svd(W, full_matrices=False)
    energy = torch.einsum("kj,kl,lj->j", U, K, U) / (torch.trace(K) / K.shape[0])
    return S, energy


# ---------------------------------------------------------------------------------- early-time prediction


def relu_backward_kernel(X: torch.Tensor, Z: torch.Tensor, depth: int) -> torch.Tensor:
    """Θ(x_i, z_j) = Π_{l=1}^{depth} (π − θ_l)/(2π): the infinite-width kernel ⟨∂f_c/∂h_1(x), ∂f_c/∂h_1(z)⟩ of
    a bias-free ReLU MLP with ``depth`` hidden layers at a Gaussian init, up to a constant factor (n_X × n_Z).

    θ_1 is the angle between x and z; the angle between the pre-activations of the next layer follows the
    degree-1 arc-cosine kernel, cos θ_{l+1} = (sin θ_l + (π − θ_l) cos θ_l)/π. Bias-free ReLU nets are
    positively homogeneous, so only angles enter.
    """
    if depth < 1:
        raise ValueError(f"relu_backward_kernel: depth must be at least 1, got {depth}")

    def unit(A: torch.Tensor) -> torch.Tensor:
        return A / A.norm(dim=1, keepdim=True).clamp_min(1e-300)

    cos = (unit(X) @ unit(Z).T).clamp(-1.0, 1.0)
    kernel = torch.ones_like(cos)
    for _ in range(depth):
        theta = torch.arccos(cos)
        kernel = kernel * (math.pi - theta) / (2 * math.pi)
        cos = ((torch.sin(theta) + (math.pi - theta) * cos) / math.pi).clamp(-1.0, 1.0)
    return kernel


def predicted_first_layer(
    X: torch.Tensor, R: torch.Tensor, depth: int, XK: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Early-time centered NFM and AGOP of layer 1 from inputs X (n × d) and residuals R (n × c) alone.

    One gradient step from a wide random init moves W_1 by ΔW ∝ Σ_i J_iᵀ r_i x_iᵀ with J_i = ∂f/∂h_1(x_i);
    at infinite width J_i J_mᵀ → Θ_im I_c (:func:`relu_backward_kernel`), so with K on the inputs ``XK``
    (default X; m runs over them)

        ΔWᵀΔW ∝ Xᵀ ((R Rᵀ) ⊙ Θ_XX) X,      ΔWᵀ K ΔW ∝ Xᵀ ((R Rᵀ) ⊙ Θ_XK Θ_XKᵀ / n_K) X

    (our derivation; with outputs small at init, R ≈ −Y). Returns the two d × d matrices.
    """
    XK = X if XK is None else XK
    theta = relu_backward_kernel(X, X, depth)
    cross = relu_backward_kernel(X, XK, depth)
    RR = R @ R.T
    nfm = X.T @ (RR * theta) @ X
    agop = X.T @ (RR * (cross @ cross.T) / len(XK)) @ X
    return nfm, agop


def first_step_update(model: nn.Sequential, X: torch.Tensor, Y: torch.Tensor, loss_fn) -> list[torch.Tensor]:
    """−∇_{W_l} L at the current weights, full batch, for every hidden layer (the first step's direction)."""
    layers = hidden_linears(model)
    loss = loss_fn(model(X), Y)
    grads = torch.autograd.grad(loss, [m.weight for m in layers])
    return [-g.detach() for g in grads]
