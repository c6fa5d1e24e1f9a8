"""RLOO advantages and loss, against values and gradients computed by hand."""

import math
import random

import pytest
import torch

from soar.algo.losses import kl_k3, rloo_loss, token_logprobs
from soar.algo.rloo import leave_one_out_advantages


def test_advantages_hand_computed():
    # group 1: [1, 0, 0, 0] -> A_1 = 1 - 0 = 1, A_others = 0 - 1/3
    # group 2: [3, 1]       -> [3 - 1, 1 - 3]
    # group 3: [0.2, 0.5, 0.8] -> 0.2 - 0.65, 0.5 - 0.5, 0.8 - 0.35
    a = leave_one_out_advantages([[1, 0, 0, 0], [3, 1]] + [[0.2, 0.5, 0.8]])
    assert a[0] == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3])
    assert a[1] == pytest.approx([2.0, -2.0])
    assert a[2] == pytest.approx([-0.45, 0.0, 0.45])


def test_advantages_sum_to_zero_per_group():
    rng = random.Random(0)
    for _ in range(200):
        k = rng.randint(2, 33)
        row = [rng.choice([0.0, 10.0, 20.0, 120.0, rng.random()]) for _ in range(k)]
        [adv] = leave_one_out_advantages([row])
        assert math.fsum(adv) == pytest.approx(0.0, abs=1e-9)


def test_equal_rewards_give_exactly_zero():
    assert leave_one_out_advantages([[0.1, 0.1, 0.1], [120.0] * 32]) == [[0.0] * 3, [0.0] * 32]


def test_advantages_need_two_samples_and_accept_tensors():
    with pytest.raises(ValueError, match="group 0 has 1"):
        leave_one_out_advantages([[1.0]])
    assert leave_one_out_advantages(torch.tensor([[1.0, 3.0]])) == [[-2.0, 2.0]]


def _linear_policy(seed=0, vocab=5, dim=3, batch=4, steps=3):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(dim, vocab, generator=g, dtype=torch.float64)
    x = torch.randn(batch, steps, dim, generator=g, dtype=torch.float64)
    y = torch.randint(0, vocab, (batch, steps), generator=g)
    return W, x, y


def test_policy_gradient_equals_hand_derivation():
    """For logits = x @ W, d log softmax(x W)[y] / dW = x (onehot(y) - p)^T: the loss
    gradient must equal -mean_i A_i sum_t mask_it x_it (onehot - p_it)^T."""
    W, x, y = _linear_policy()
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 0, 1], [1, 0, 0]], dtype=torch.float64)  # 0 = prompt
    adv = torch.tensor(leave_one_out_advantages([[1.0, 0.0, 0.0, 2.0]])[0], dtype=torch.float64)

    W1 = W.clone().requires_grad_(True)
    logp = token_logprobs(x @ W1, y).double()
    loss, stats = rloo_loss(logp, None, mask, adv)
    loss.backward()

    p = torch.softmax(x @ W, dim=-1)
    onehot = torch.nn.functional.one_hot(y, W.shape[1]).double()
    per_token = torch.einsum("btd,btv->btdv", x, onehot - p)  # d logp_bt / dW
    expected = -(adv[:, None, None, None] * mask[:, :, None, None] * per_token).sum(dim=1).mean(dim=0)
    assert torch.allclose(W1.grad, expected, atol=1e-10)
    assert stats.tokens == 7


def test_masked_tokens_get_no_gradient():
    """Changing the logits of masked (prompt) positions changes neither loss nor gradient."""
    W, x, y = _linear_policy(seed=1)
    mask = torch.tensor([[0, 0, 1]] * 4, dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    logits = (x @ W).requires_grad_(True)
    loss, _ = rloo_loss(token_logprobs(logits, y).double(), None, mask, adv)
    loss.backward()
    assert torch.all(logits.grad[:, :2] == 0) and torch.any(logits.grad[:, 2] != 0)
    scrambled = (x @ W).clone()
    scrambled[:, :2] += 100 * torch.randn_like(scrambled[:, :2])
    loss2, _ = rloo_loss(token_logprobs(scrambled, y).double(), None, mask, adv)
    assert torch.allclose(loss, loss2)


def test_token_normalisation_rescales_the_same_direction():
    W, x, y = _linear_policy(seed=2)
    mask = torch.ones(4, 3, dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    grads = []
    for norm in ("sequence", "token"):
        W1 = W.clone().requires_grad_(True)
        rloo_loss(token_logprobs(x @ W1, y).double(), None, mask, adv, normalisation=norm)[0].backward()
        grads.append(W1.grad)
    assert torch.allclose(grads[0] / 3, grads[1])
    with pytest.raises(ValueError):
        rloo_loss(torch.zeros(1, 1), None, torch.ones(1, 1), torch.ones(1), normalisation="nope")


def test_kl_is_zero_at_reference_and_positive_elsewhere():
    W, x, y = _linear_policy(seed=3)
    mask = torch.ones(4, 3, dtype=torch.float64)
    logp = token_logprobs(x @ W, y).double()
    adv = torch.zeros(4, dtype=torch.float64)
    loss, stats = rloo_loss(logp, logp.clone(), mask, adv, kl_coef=0.001)
    assert stats.kl == 0.0 and loss.item() == 0.0
    other = token_logprobs(x @ (W + 0.5), y).double()
    assert torch.all(kl_k3(logp, other) >= 0)
    _, stats = rloo_loss(logp, other, mask, adv, kl_coef=0.001)
    assert stats.kl > 0
    # the KL term pulls the policy towards the reference: its gradient is zero at pi = ref
    W1 = W.clone().requires_grad_(True)
    loss, _ = rloo_loss(token_logprobs(x @ W1, y).double(), logp, mask, adv, kl_coef=1.0)
    loss.backward()
    assert torch.allclose(W1.grad, torch.zeros_like(W1.grad), atol=1e-12)


@pytest.mark.parametrize("norm", ["sequence", "token"])
def test_kl_and_policy_keep_one_scale_whatever_the_reply_length(norm):
    """beta weighs the KL against the policy term the same way for replies of 4 and of 40 tokens (issue 26: the
    KL was once averaged over tokens while the policy term was summed, so beta acted as ~beta / T)."""
    torch.manual_seed(0)
    base_logp, ref = -torch.rand(3, 4, dtype=torch.float64) - 0.1, -torch.rand(3, 4, dtype=torch.float64) - 0.1
    adv = torch.tensor([1.0, -0.5, -0.5], dtype=torch.float64)
    ratios = []
    for tiles in (1, 10):  # the same replies, each token repeated: 4 and 40 generated tokens
        parts = []
        for kl_coef, advantages in ((0.0, adv), (0.001, torch.zeros(3, dtype=torch.float64))):
            logp = base_logp.repeat(1, tiles).requires_grad_(True)
            mask = torch.ones_like(logp)
            rloo_loss(logp, ref.repeat(1, tiles), mask, advantages, kl_coef=kl_coef, normalisation=norm)[0].backward()
            parts.append(logp.grad.norm().item())
        ratios.append(parts[1] / parts[0])  # |grad KL term| / |grad policy term|
    assert ratios[0] > 0
    assert ratios[1] == pytest.approx(ratios[0], rel=1e-9)


def test_reported_kl_is_that_of_a_whole_reply():
    logp = torch.full((2, 5), -1.0, dtype=torch.float64)
    ref = torch.full((2, 5), -1.5, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float64)
    _, stats = rloo_loss(logp, ref, mask, torch.zeros(2, dtype=torch.float64), kl_coef=0.001)
    per_token = math.exp(-0.5) + 0.5 - 1.0
    assert stats.kl == pytest.approx((3 * per_token + 5 * per_token) / 2)


def test_the_one_learning_rate_schedule_is_transformers_cosine_and_constant_with_warmup():
    import torch
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    from soar.algo.schedule import lr_factor

    for total, warmup in ((10, 0), (10, 3), (1, 0), (7, 7)):
        for name, make in (("cosine", lambda o: get_cosine_schedule_with_warmup(o, warmup, total)),
                           ("constant", lambda o: get_constant_schedule_with_warmup(o, warmup))):
            optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
            reference = make(optimizer)
            for step in range(total + 2):
                assert abs(lr_factor(step, total, warmup, name) - reference.get_last_lr()[0]) < 1e-12, (name, step)
                optimizer.step()
                reference.step()
