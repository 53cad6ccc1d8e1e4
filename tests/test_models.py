"""The small models: shapes, causality of the language model, the shared transformer block."""

import torch

from optdyn import models


def test_language_model_is_causal():
    lm = models.tiny_lm() if hasattr(models, "tiny_lm") else None
    assert lm is not None
    vocab, context = lm.head.out_features, lm.pos.shape[0]
    x = torch.randint(0, vocab, (2, context), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % vocab
    before, after = lm(x), lm(y)
    assert torch.allclose(before[:, :-1], after[:, :-1]) and not torch.allclose(before[:, -1], after[:, -1])


def test_vit_attends_to_every_patch():
    vit = models.tiny_vit()
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, :, -4:, -4:] += 1.0
    assert vit(x).shape == (2, 10) and not torch.allclose(vit(x), vit(y))
