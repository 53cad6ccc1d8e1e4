"""Small models for CPU-scale replications."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


def mlp(
    widths: Sequence[int],
    activation: str = "tanh",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    bias: bool = True,
) -> nn.Sequential:
    """Fully connected net widths[0] → … → widths[-1], PyTorch's default init drawn from ``seed``.

    The digits model of the edge-of-stability chapter is ``mlp([64, 64, 64, 10])``: 8,970 parameters.
    ``bias=False``: no biases (the bias-free ReLU MLP of the feature-learning chapter).
    """
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ValueError(f"mlp: need at least two positive widths, got {list(widths)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers).to(dtype)


def small_cnn(
    in_channels: int = 1,
    side: int = 8,
    classes: int = 10,
    width: int = 16,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """Two 3×3 conv layers (tanh), global average pooling, a linear head. Input (N, C, side, side)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, classes),
    )
    return model.to(dtype)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- sqrt_free_adaptive chapter: a strided CNN and a tiny vision transformer for 8×8 digits -------------


def strided_cnn(
    width: int = 8, classes: int = 10, seed: int = 0, dtype: torch.dtype = torch.float32
) -> nn.Sequential:
    """conv(1→w, 3×3, pad 1)–ReLU–conv(w→2w, 3×3, stride 2, pad 1)–ReLU–flatten–linear(2w·16 → classes).

    Input (N, 1, 8, 8). No global pooling (it trains far slower on digits). ``width=8``: 3,818 parameters.
    """
    if width < 1:
        raise ValueError(f"strided_cnn: width must be positive, got {width}")
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * width * 16, classes),
    )
    return model.to(dtype)


class _TransformerBlock(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) (GELU); ``causal`` masks each
    position's attention to itself and the positions before it (a language model's block)."""

    def __init__(self, width: int, heads: int, hidden: int, causal: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / (w // self.heads) ** 0.5
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        x = x + self.proj((torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(n, t, w))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """Vision transformer for (N, 1, side, side) images: p×p patches, class token, learned positions.

    Parameters are plain matrices and vectors (class token (w,), positions (tokens+1, w)), so every
    tensor is at most 2-D after reshaping a conv kernel; a Kronecker-factored optimizer sees natural shapes.
    """

    def __init__(self, side: int, patch: int, width: int, depth: int, heads: int, hidden: int, classes: int):
        super().__init__()
        if side % patch or width % heads:
            raise ValueError(f"TinyViT: patch {patch} must divide side {side}, heads {heads} width {width}")
        self.patch = patch
        tokens = (side // patch) ** 2
        self.embed = nn.Linear(patch * patch, width)
        self.cls = nn.Parameter(torch.zeros(width))
        self.pos = nn.Parameter(0.02 * torch.randn(tokens + 1, width))
        self.blocks = nn.ModuleList(_TransformerBlock(width, heads, hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of images (N, 1, side, side)."""
        p = self.patch
        patches = nn.functional.unfold(x, p, stride=p).transpose(1, 2)  # (N, tokens, p*p)
        z = self.embed(patches)
        z = torch.cat([self.cls.expand(len(z), 1, -1), z], dim=1) + self.pos
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z[:, 0]))


def tiny_vit(
    patch: int = 4,
    width: int = 16,
    depth: int = 2,
    heads: int = 2,
    hidden: int = 32,
    classes: int = 10,
    side: int = 8,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> TinyViT:
    """A tiny ViT for 8×8 digits: 4×4 patches → 4 tokens + class token. Defaults: 5,018 parameters."""
    torch.manual_seed(seed)
    return TinyViT(side, patch, width, depth, heads, hidden, classes).to(dtype)


# --- adam_local_geometry chapter: a tiny causal transformer language model -------------------------------


class TinyLM(nn.Module):
    """GPT-style language model: token + learned position embeddings, causal blocks, LayerNorm, linear head.

    Input (N, T) token ids; output (N, T, vocab) logits for the next token.
    """

    def __init__(self, vocab: int, context: int, width: int, depth: int, heads: int, hidden: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"TinyLM: heads {heads} must divide width {width}")
        self.tokens = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(0.02 * torch.randn(context, width))
        self.blocks = nn.ModuleList(
            _TransformerBlock(width, heads, hidden, causal=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Next-token logits, shape (batch, context, vocabulary), for token ids ``x`` (batch, context)."""
        z = self.tokens(x) + self.pos[: x.shape[1]]
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z))


def tiny_lm(
    vocab: int = 32,
    context: int = 16,
    width: int = 16,
    depth: int = 1,
    heads: int = 2,
    hidden: int = 32,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> TinyLM:
    """A tiny causal transformer LM; defaults: 1 layer, width 16, 2 heads, 3,568 parameters."""
    if min(vocab, context, width, depth, heads, hidden) < 1:
        raise ValueError("tiny_lm: all sizes must be positive")
    torch.manual_seed(seed)
    return TinyLM(vocab, context, width, depth, heads, hidden).to(dtype)


# --- second_order_regression chapter: models quadratic in their parameters ------------------------------


class SecondOrderRegression:
    """A second-order regression model (Agarwala, Pedregosa & Pennington 2023): D residuals quadratic in
    P parameters,

        z(θ) = z0 + Gᵀθ + ½ Q(θ, θ),        J(θ) = ∂z/∂θ = Gᵀ + Q(θ, ·)   (D × P),

    with ``z0`` (D,), ``G`` (P, D) the Jacobian at θ = 0 and ``Q`` (D, P, P) symmetric in its last two
    slots (Q_α is the Hessian of residual α). Loss L = ½‖z‖² (no 1/D), NTK Θ = J Jᵀ (D × D), loss
    Hessian ∇²L = JᵀJ + Σ_α z_α Q_α. ``Q = 0`` is the linearized (constant-NTK) model. Float64 tensors.
    """

    def __init__(self, z0: torch.Tensor, G: torch.Tensor, Q: torch.Tensor) -> None:
        z0, G, Q = (torch.as_tensor(x, dtype=torch.float64) for x in (z0, G, Q))
        D, P = z0.shape[0], G.shape[0]
        if z0.dim() != 1 or G.shape != (P, D) or Q.shape != (D, P, P):
            raise ValueError(
                f"SecondOrderRegression: need z0 (D,), G (P, D), Q (D, P, P); got {tuple(z0.shape)}, "
                f"{tuple(G.shape)}, {tuple(Q.shape)}"
            )
        if not torch.allclose(Q, Q.transpose(1, 2)):
            raise ValueError("SecondOrderRegression: each Q_α must be symmetric")
        self.z0, self.G, self.Q = z0, G, Q

    @property
    def outputs(self) -> int:
        return self.z0.shape[0]

    @property
    def params(self) -> int:
        return self.G.shape[0]

    def residual(self, theta: torch.Tensor) -> torch.Tensor:
        """z(θ) = z0 + Gᵀθ + ½ Q(θ, θ), shape (D,). Differentiable in θ."""
        return self.z0 + theta @ self.G + 0.5 * (self.Q @ theta) @ theta

    def jacobian(self, theta: torch.Tensor) -> torch.Tensor:
        """J(θ) = Gᵀ + Q(θ, ·), shape (D, P)."""
        return self.G.T + self.Q @ theta

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """L(θ) = ½‖z(θ)‖²."""
        z = self.residual(theta)
        return 0.5 * (z @ z)

    def gd_step(self, z: torch.Tensor, J: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One GD step θ ← θ − η Jᵀz written in function space, exact for a quadratic model:

        z ← z − η J Jᵀ z + (η²/2) Q(Jᵀz, Jᵀz),        J ← J − η Q(Jᵀz, ·).
        """
        v = J.T @ z
        Qv = self.Q @ v
        return z - lr * (J @ v) + (0.5 * lr**2) * (Qv @ v), J - lr * Qv

    def linearized(self) -> SecondOrderRegression:
        """The same model with Q = 0: z(θ) = z0 + Gᵀθ, the constant-NTK model."""
        return SecondOrderRegression(self.z0, self.G, torch.zeros_like(self.Q))


def ntk_top_eigenvalue(J: torch.Tensor) -> float:
    """λ_max(J Jᵀ), the top NTK eigenvalue (= the top eigenvalue of the Gauss-Newton matrix JᵀJ)."""
    return float(torch.linalg.eigvalsh(J @ J.T)[-1])


def second_order_regression(
    outputs: int, params: int, q: float, seed: int = 0, z_scale: float = 1.0
) -> SecondOrderRegression:
    """A random instance: G_ij ~ N(0, 1/P), Q_α = q (A_α + A_αᵀ)/2 with A_α,ij ~ N(0, 1/P), and
    z0 ~ N(0, z_scale²).

    G, A and z0 are drawn in that order from ``seed`` whatever q is, so the instances at different q (q = 0
    included: the linearized model) share G, z0 and the direction of Q. The scalings are ours.
    """
    if outputs < 1 or params < 1:
        raise ValueError(f"second_order_regression: sizes must be positive, got {outputs}, {params}")
    if not q >= 0:
        raise ValueError(f"second_order_regression: q must be non-negative, got {q}")
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(params, outputs, generator=gen, dtype=torch.float64) / params**0.5
    A = torch.randn(outputs, params, params, generator=gen, dtype=torch.float64) / params**0.5
    z0 = z_scale * torch.randn(outputs, generator=gen, dtype=torch.float64)
    return SecondOrderRegression(z0, G, q * (A + A.transpose(1, 2)) / 2)


def two_parameter_model(
    omega: float, g: Sequence[float], z0: float, angle: float = 0.0
) -> SecondOrderRegression:
    """One residual, two parameters: z(θ) = z0 + gᵀθ + ½ θᵀQθ with Q = ω R diag(1, −1) Rᵀ, R the rotation by
    ``angle`` (so Q² = ω² I: a saddle whose two curvatures are ±ω)."""
    if not omega > 0:
        raise ValueError(f"two_parameter_model: omega must be positive, got {omega}")
    c, s = math.cos(angle), math.sin(angle)
    R = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    Q = omega * R @ torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)) @ R.T
    Q = (Q + Q.T) / 2
    G = torch.as_tensor(g, dtype=torch.float64).reshape(2, 1)
    return SecondOrderRegression(torch.tensor([float(z0)], dtype=torch.float64), G, Q[None])


# ------------------------------------------------------------------------------------------------------
# Activations with a chosen second derivative (Dauphin, Agarwala & Mobahi 2024, activation-NME ablations)


def _gaussian_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _gaussian_pdf(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def beta_gelu_derivatives(x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """σ_β(x) = x Φ(βx) and its first two derivatives (β = 1: GELU; β → ∞: ReLU):

    σ' = Φ(βx) + βx φ(βx),  σ'' = β φ(βx)(2 − β²x²)  (φ, Φ: standard normal density and CDF).
    """
    u = beta * x
    cdf, pdf = _gaussian_cdf(u), _gaussian_pdf(u)
    return x * cdf, cdf + u * pdf, beta * pdf * (2.0 - u * u)


def relu_derivatives(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ReLU, its derivative 1[x > 0] and its second derivative, 0 (almost everywhere)."""
    step = (x > 0).to(x.dtype)
    return x * step, step, torch.zeros_like(x)


class JetActivation(nn.Module):
    """An elementwise activation given by its value, slope and curvature at each pre-activation x:

    a(x + u) = s(x) + s'(x) u + ½ q(x) u²  (a second-order jet around the current x),

    computed as ``s.detach() + u·s'.detach() + ½u²·q.detach()`` with ``u = x − x.detach()`` (value 0,
    derivative 1). Autograd (and `torch.func`) then sees value s(x), first derivative s'(x) and second
    derivative q(x), whatever q is. With q = σ'' this is σ itself to second order, which is all that
    training, SAM and a gradient penalty differentiate; ``curvature="zero"`` removes σ'' (the "activation
    NME ablated" network of Dauphin et al. 2024, Fig. 2), and ``curvature="gelu"`` gives a ReLU network
    GELU's σ'' (their "synthetic NME", Fig. 3; the surrogate is our choice). Third derivatives are 0.
    """

    KINDS = ("relu", "gelu", "beta_gelu")
    CURVATURES = ("own", "zero", "gelu")

    def __init__(self, kind: str = "gelu", beta: float = 1.0, curvature: str = "own") -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"JetActivation: unknown kind {kind!r}; known: {', '.join(self.KINDS)}")
        if curvature not in self.CURVATURES:
            raise ValueError(
                f"JetActivation: unknown curvature {curvature!r}; known: {', '.join(self.CURVATURES)}"
            )
        if not beta > 0:
            raise ValueError(f"JetActivation: beta must be positive, got {beta}")
        self.kind, self.beta, self.curvature = kind, float(1.0 if kind == "gelu" else beta), curvature

    def derivatives(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(s, s', q) at x, q the chosen second derivative."""
        if self.kind == "relu":
            value, slope, own = relu_derivatives(x)
        else:
            value, slope, own = beta_gelu_derivatives(x, self.beta)
        if self.curvature == "zero":
            return value, slope, torch.zeros_like(x)
        if self.curvature == "gelu":
            return value, slope, beta_gelu_derivatives(x, 1.0)[2]
        return value, slope, own

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The jet ``s + u·s' + ½u²·q`` at ``x``, elementwise (value s(x), derivatives s'(x) and q(x))."""
        # detach, not no_grad: forward-mode AD (torch.func.jvp) ignores no_grad.
        value, slope, curvature = (t.detach() for t in self.derivatives(x.detach()))
        u = x - x.detach()
        return value + u * slope + 0.5 * u * u * curvature

    def extra_repr(self) -> str:
        return f"kind={self.kind}, beta={self.beta:g}, curvature={self.curvature}"


def jet_mlp(
    widths: Sequence[int],
    kind: str = "gelu",
    beta: float = 1.0,
    curvature: str = "own",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """:func:`optdyn.models.mlp` with :class:`optdyn.models.JetActivation` units; the same seed gives the
    same weights as ``mlp``."""
    model = mlp(widths, "relu", seed=seed, dtype=dtype)
    for i, layer in enumerate(model):
        if isinstance(layer, nn.ReLU):
            model[i] = JetActivation(kind, beta, curvature)
    return model
