"""optdyn: the helper package of 'Optimization Dynamics, Reproduced'."""

__version__ = "0.1.0"
