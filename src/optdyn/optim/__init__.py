"""Optimizers, as `torch.optim.Optimizer` objects, one module per family.

``sgd``: GD, heavy ball, Nesterov (torch's own `SGD`). ``adam``: Adam with its preconditioner exposed.
Every public name is re-exported here: ``optdyn.optim.Adam`` is ``optdyn.optim.adam.Adam``.
"""

from .adam import Adam, preconditioner_of
from .root_free import IFShampoo, RFRMSProp, adamw, sgd_momentum, shampoo_state_bytes, state_bytes
from .sam import SAM, sam, usam
from .sgd import Params, gd, heavy_ball, nesterov
from .slo import NormalizedSGD, speed_limited
from .tuners import CDAT, Armijo, ConstantStep, Polyak, Tuner, batch_closure, greedy

__all__ = ["SAM", "sam", "usam", "Adam", "Params", "gd", "heavy_ball", "nesterov", "preconditioner_of"]
__all__ += ["IFShampoo", "RFRMSProp", "adamw", "sgd_momentum", "shampoo_state_bytes", "state_bytes"]
__all__ += ["CDAT", "Armijo", "ConstantStep", "Polyak", "Tuner", "batch_closure", "greedy"]
__all__ += ["NormalizedSGD", "speed_limited"]
