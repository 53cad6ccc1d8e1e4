import pytest
import torch

from optdyn.train import set_threads

set_threads(1)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
