"""Where a chapter computes: a CUDA GPU for the ``full`` profile when one is present, else the CPU.

``quick`` and ``default`` always run on the CPU (the book's published numbers come from a 2-core CPU, and
float64 Lanczos on tiny models gains nothing from a GPU). ``full`` takes the first CUDA device; without
one it says so in one line and runs on the CPU. ``OPTDYN_DEVICE=cpu`` or ``cuda`` overrides the choice.
"""

from __future__ import annotations

import os

import torch

DEVICES = ("cpu", "cuda")


def select(profile: str) -> torch.device:
    """The device for ``profile``; it becomes torch's default device, so models and data follow it."""
    wanted = os.environ.get("OPTDYN_DEVICE", "cuda" if profile == "full" else "cpu")
    if wanted not in DEVICES:
        raise ValueError(f"OPTDYN_DEVICE={wanted!r} is not one of: {', '.join(DEVICES)}")
    if wanted == "cuda" and not torch.cuda.is_available():
        print(f"optdyn: profile {profile!r} asks for a GPU but none is available; running on the CPU")
        wanted = "cpu"
    device = torch.device(wanted)
    torch.set_default_device(device)
    return device
