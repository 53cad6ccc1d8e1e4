"""Device selection: the CPU for quick/default, a GPU for full where there is one, else a notice."""

import pytest
import torch

from optdyn import device


@pytest.fixture(autouse=True)
def _back_to_cpu(monkeypatch):
    monkeypatch.delenv("OPTDYN_DEVICE", raising=False)
    yield
    torch.set_default_device("cpu")


@pytest.mark.parametrize("profile", ["quick", "default"])
def test_small_profiles_run_on_the_cpu(profile):
    assert device.select(profile) == torch.device("cpu")
    assert torch.zeros(1).device == torch.device("cpu")


def test_full_without_a_gpu_falls_back_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.select("full") == torch.device("cpu")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "no" in lines[0] and "GPU" in lines[0]


def test_full_takes_the_gpu_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch, "set_default_device", lambda d: None)
    assert device.select("full") == torch.device("cuda")


def test_an_unknown_override_is_refused(monkeypatch):
    monkeypatch.setenv("OPTDYN_DEVICE", "tpu")
    with pytest.raises(ValueError, match="OPTDYN_DEVICE='tpu'"):
        device.select("quick")
