"""Where a chapter computes: a CUDA GPU for the ``full`` profile when one is present, else the CPU.

``quick`` and ``default`` always run on the CPU (the book's published numbers come from a 2-core CPU, and
float64 Lanczos on tiny models gains nothing from a GPU). ``full`` takes the first CUDA device; without
one it says so in one line and runs on the CPU. ``OPTDYN_DEVICE=cpu`` or ``cuda`` overrides the choice
(an empty value counts as unset). The runner calls :func:`resolve` before any kernel starts, so a bad value
is refused in one line, the CPU fallback is said in the terminal, and the device actually used is part of
the cache key; torch is imported only where a GPU is asked for.
"""

from __future__ import annotations

import os

DEVICES = ("cpu", "cuda")
VARIABLE = "OPTDYN_DEVICE"


def requested(profile: object) -> str:
    """The device asked for: ``OPTDYN_DEVICE`` where set, else ``cuda`` for ``full`` and ``cpu`` otherwise.

    Raises ValueError (one line) for any other value of the variable.
    """
    value = os.environ.get(VARIABLE, "")
    if not value:
        return "cuda" if profile == "full" else "cpu"
    if value not in DEVICES:
        text = repr(value) if len(repr(value)) <= 80 else repr(value)[:79] + "…"
        raise ValueError(f"{VARIABLE}={text} is not one of: {', '.join(DEVICES)}")
    return value


def resolve(profile: object) -> tuple[str, str | None]:
    """(the device to use, a one-line notice or None): a GPU asked for where none is available is the CPU,
    and the notice says who asked (the variable or the profile)."""
    wanted = requested(profile)
    if wanted == "cuda":
        import torch

        if not torch.cuda.is_available():
            who = f"{VARIABLE}=cuda" if os.environ.get(VARIABLE) else f"profile {profile!r}"
            return "cpu", f"{who} asks for a GPU but none is available; running on the CPU"
    return wanted, None


def select(profile: str):
    """The device for ``profile`` (a ``torch.device``); it becomes torch's default device, so models and data
    follow it. Prints the notice of :func:`resolve` where there is one."""
    import torch

    name, notice = resolve(profile)
    if notice:
        print(f"optdyn: {notice}")
    device = torch.device(name)
    torch.set_default_device(device)
    return device
