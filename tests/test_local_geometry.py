"""R_med (Jiang, Malik & Li 2023) against hand values, closed-form Hessians and a dense torch.func.hessian."""

import numpy as np
import pytest
import torch
from torch.func import functional_call, hessian

from optdyn import data, local_geometry, models, theory
from optdyn.experiments import adam_local_geometry as al


def test_r_med_hand_values():
    assert local_geometry.r_med(np.array([1.0, 2.0, 3.0, 4.0, 10.0])) == pytest.approx(10 / 3)
    assert local_geometry.r_med(np.array([-10.0, 1.0, 2.0])) == pytest.approx(10 / 2)  # |h|
    assert local_geometry.r_med(np.array([0.0, 0.0, 0.0, 1.0, 3.0])) == pytest.approx(3 / 2)  # zeros dropped
    assert local_geometry.r_med(
        np.array([0.0, 0.0, 0.0, 1.0, 3.0]), drop_zeros=False
    ) != local_geometry.r_med(np.array([0.0, 0.0, 0.0, 1.0, 3.0]))
    assert np.isnan(local_geometry.r_med(np.array([-3.0, -1.0, 2.0]), absolute=False))  # median < 0
    assert np.isnan(local_geometry.r_med(np.zeros(4)))


def test_diagonal_of_a_quadratic():
    torch.manual_seed(1)
    B = torch.randn(6, 6, dtype=torch.float64)
    A = B @ B.T
    theta = torch.randn(6, dtype=torch.float64, requires_grad=True)
    diag = local_geometry.hessian_diagonal(lambda: 0.5 * theta @ A @ theta, theta)
    np.testing.assert_allclose(diag, torch.diagonal(A).numpy(), rtol=1e-12)
    sub = local_geometry.hessian_diagonal(lambda: 0.5 * theta @ A @ theta, theta, [4, 1])
    np.testing.assert_allclose(sub, torch.diagonal(A).numpy()[[4, 1]], rtol=1e-12)
    with pytest.raises(ValueError):
        local_geometry.hessian_diagonal(lambda: 0.5 * theta @ A @ theta, theta, [6])


def test_diagonal_of_least_squares_is_second_moment():
    torch.manual_seed(2)
    X = torch.randn(50, 4, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0, 10.0], dtype=torch.float64)
    y = torch.randn(50, dtype=torch.float64)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    diag = local_geometry.hessian_diagonal(lambda: 0.5 * ((X @ w - y) ** 2).mean(), w)
    np.testing.assert_allclose(diag, (X**2).mean(0).numpy(), rtol=1e-12)
    m2 = (X**2).mean(0).numpy()
    assert local_geometry.r_med(diag) == pytest.approx(m2.max() / np.median(m2))


def test_linear_network_closed_form_matches_hvp():
    problem = theory.linear_net_problem(n=64, d=6, k=3, spread=5.0, seed=3)
    W1, W2 = theory.linear_net_init(6, 4, 3, init_scale=1.0, seed=3)

    def loss():
        return theory.linear_net_loss(W1, W2, problem.X, problem.Y)

    h1, h2 = theory.linear_net_hessian_diagonal(W1, W2, problem.X)
    np.testing.assert_allclose(local_geometry.hessian_diagonal(loss, W1), h1.reshape(-1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(local_geometry.hessian_diagonal(loss, W2), h2.reshape(-1).numpy(), rtol=1e-10)
    # balanced hidden units: R_med(W1) equals the data's own ratio (LN-3)
    W2b = torch.ones(3, 4, dtype=torch.float64)
    h1b, _ = theory.linear_net_hessian_diagonal(W1, W2b, problem.X)
    assert local_geometry.r_med(h1b) == pytest.approx(theory.balanced_r_med(problem.X), rel=1e-12)
    assert theory.unit_imbalance(W2b) == pytest.approx(1.0)


def test_diagonal_against_dense_hessian_on_a_tiny_transformer():
    model = models.tiny_lm(vocab=5, context=3, width=4, depth=1, heads=2, hidden=4, seed=0)
    ds = data.markov_tokens(6, context=3, vocab=5, branching=2, seed=0)
    names = dict(model.named_parameters())

    def loss_of(params):
        out = functional_call(model, params, (ds.X,))
        return torch.nn.functional.cross_entropy(out.reshape(-1, 5), ds.Y.reshape(-1))

    def loss():
        return loss_of(names)

    for name in ("blocks.0.qkv.weight", "head.weight", "tokens.weight"):
        p = names[name]
        dense = hessian(lambda q, name=name: loss_of({**names, name: q}))(p.detach())
        expected = torch.diagonal(dense.reshape(p.numel(), p.numel())).detach().numpy()
        for chunk in (1, 7, 1000):  # one product per pass, uneven chunks, everything in one pass
            got = local_geometry.hessian_diagonal(loss, p, chunk=chunk)
            np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-12)


def test_blocks_split_the_fused_qkv_matrix_exactly():
    e = al.exactness(seed=3)
    assert list(e["block"]) == [
        b.label for b in al.lm_blocks(dict(context=5, width=4, depth=2, heads=2, hidden=8))
    ]
    assert set(e["block"]) >= {"0.q", "0.k", "0.v", "1.q", "1.k", "1.v", "tokens", "positions", "head"}
    assert (e["coordinates"][e["block"].isin(["0.q", "0.k", "0.v"])] == 16).all()
    assert e["max_relative_error"].max() < 1e-10
    with pytest.raises(ValueError, match="rows"):
        local_geometry.Block("x", "w", "inner", (2, 9)).indices(torch.Size([4, 3]))


def test_sampled_block_coordinates_are_exact_entries_and_fixed():
    model = models.tiny_lm(vocab=5, context=3, width=4, depth=1, heads=2, hidden=4, seed=1)
    ds = data.markov_tokens(6, context=3, vocab=5, branching=2, seed=1)

    def loss():
        return torch.nn.functional.cross_entropy(model(ds.X).reshape(-1, 5), ds.Y.reshape(-1))

    blocks = al.lm_blocks(dict(context=3, width=4, depth=1, heads=2, hidden=4))
    exact = local_geometry.block_diagonals(loss, model, blocks)
    a = local_geometry.block_diagonals(loss, model, blocks, per_block=5, seed=2)
    b = local_geometry.block_diagonals(loss, model, blocks, per_block=5, seed=2)
    for label in exact:
        assert len(a[label]) == min(5, len(exact[label]))
        np.testing.assert_array_equal(a[label], b[label])
        assert np.isin(np.round(a[label], 12), np.round(exact[label], 12)).all()
    s = local_geometry.summary(np.array([-1.0, 0.0, 2.0, 4.0]))
    assert s == dict(r_med=2.0, r_med_signed=2.0, negative=0.25, zeros=0.25, coordinates=4)


def test_markov_tokens_and_causal_lm():
    ds = data.markov_tokens(20, context=8, vocab=10, seed=4)
    assert ds.X.shape == (20, 8) and torch.equal(ds.X[:, 1:], ds.Y[:, :-1])
    assert torch.equal(ds.X, data.markov_tokens(20, context=8, vocab=10, seed=4).X)
    with pytest.raises(ValueError):
        data.markov_tokens(5, vocab=3, branching=4)
    model = models.tiny_lm(vocab=10, context=8, seed=0)
    x = ds.X[:2].clone()
    before = model(x)
    x[:, -1] = (x[:, -1] + 1) % 10
    torch.testing.assert_close(model(x)[:, :-1], before[:, :-1])  # the future does not leak


def test_characters_of_python_source():
    text = "def f(x):\n\treturn x ≥ 1  # é\n"
    ids = data.encode_chars(text)
    assert ids.max() < data.CHAR_VOCAB and ids[text.index("\n")] == 0 and ids[0] == ord("d") - 31
    assert data.decode_chars(ids) == text.replace("\t", "¤").replace("≥", "¤").replace("é", "¤")
    corpus = data.python_source(("textwrap", "string"), held_out=0.1)
    n = len(corpus.train) + len(corpus.valid) + len(corpus.test)
    assert abs(len(corpus.valid) - 0.1 * n) <= 1 and "2 standard-library modules" in corpus.source
    x, y = corpus.windows("valid", 16, limit=5)
    assert x.shape == (5, 16) and torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x[1], corpus.valid[16:32])
    bx, by = corpus.sample(np.random.default_rng(0), 4, 16)
    assert torch.equal(bx[:, 1:], by[:, :-1])
    with pytest.raises(ValueError, match="held_out"):
        data.python_source(held_out=0.6)


def test_ngram_baseline_on_a_periodic_text():
    ids = torch.as_tensor(np.tile([1, 2], 500))
    corpus = data.CharCorpus(ids, ids[:10], ids[:101], "test")
    V = data.CHAR_VOCAB
    assert al.ngram_loss(corpus, 1, alpha=0.0) == pytest.approx(np.log(2))
    # after "1" always "2": probability (n + α) / (n + αV) with n = 500 contexts
    assert al.ngram_loss(corpus, 2, alpha=0.1) == pytest.approx(-np.log(500.1 / (500 + 0.1 * V)), rel=1e-3)


def test_bad_arguments_fail_before_compute():
    with pytest.raises(ValueError, match="unknown profile"):
        al.config("huge")
    with pytest.raises(ValueError, match="seed"):
        al.language_model("quick", seed=-1)
    with pytest.raises(ValueError, match="seed"):
        al.linear_network("quick", seed=-1)
    with pytest.raises(ValueError, match="optimizer"):
        al._optimizer("lion", [torch.zeros(1, requires_grad=True)], 0.1)
    with pytest.raises(ValueError, match="spread"):
        theory.linear_net_problem(spread=0.5)
    with pytest.raises(ValueError, match="chunk"):
        local_geometry.hessian_diagonal(lambda: torch.zeros(()), torch.zeros(2, requires_grad=True), chunk=0)


def test_linear_run_records_divergence_without_crashing():
    rows = al._linear_run(30.0, "gd", 1.0, dict(lin_steps=200, lin_every=10), seed=0)
    assert not np.isfinite(rows[-1]["loss"]) or rows[-1]["loss"] > 1e6
    assert "closed_form_error" not in rows[-1]
    done = al._linear_run(3.0, "adam", 1e-2, dict(lin_steps=30, lin_every=10), seed=0)
    assert done[-1]["closed_form_error"] < 1e-10
