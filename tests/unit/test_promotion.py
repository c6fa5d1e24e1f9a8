"""Teacher reward assembly, partitioning and the promotion rule (Algorithm 1, B.3, B.4)."""

import pytest

from soar.algo.promotion import (
    PromotionState,
    decide_promotion,
    grounded_rewards,
    inner_steps,
    learnability_reward,
    median_index,
    partition,
)


def test_partition_is_consecutive_and_exact():
    assert partition(list(range(6)), 3, 2) == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="g\\*n"):
        partition(list(range(5)), 3, 2)


def test_grounded_rewards_subtract_the_baseline_once_and_average_over_students():
    per_student, per_dataset = grounded_rewards([[0.25, 0.5], [0.0, 0.125]], baseline_accuracy=0.125)
    assert per_student == [[0.125, 0.375], [-0.125, 0.0]]
    assert per_dataset == [0.25, -0.0625]


def test_learnability_reward_follows_b4():
    assert learnability_reward([0.0, 0.25, 1.0, 0.5]) == pytest.approx((0 + 0.75 + 0 + 0.5) / 4)
    assert learnability_reward([]) == 0.0


def test_median_index_odd_even_and_ties():
    assert median_index([0.3, 0.1, 0.2]) == 2
    assert median_index([0.4, 0.1, 0.3, 0.2]) == 3  # lower median of an even count: 0.2
    assert median_index([0.5, 0.5]) == 0
    assert median_index([0.7]) == 0


def test_moving_average_pads_with_zeros_and_promotes_on_the_best_dataset():
    state = PromotionState()
    decision, state = decide_promotion(state, [[0.03, 0.03], [0.0, 0.0]], tau=0.01, window=3)
    assert decision.mean_reward == pytest.approx(0.015)
    assert decision.moving_average == pytest.approx(0.005) and not decision.promote  # (0 + 0 + 0.015) / 3
    decision, state = decide_promotion(state, [[0.05, 0.05], [0.0, 0.02]], tau=0.01, window=3)
    assert decision.moving_average == pytest.approx((0.015 + 0.03) / 3) and decision.promote
    assert decision.dataset == 0 and decision.student == 0
    assert state.stage == 1 and state.window_means == []  # the window restarts after a promotion


def test_window_keeps_only_the_last_steps_and_tau_is_strict():
    state = PromotionState(window_means=[0.5, 0.0, 0.0], stage=2)
    decision, state = decide_promotion(state, [[0.03]], tau=0.01, window=3)  # 0.5 has left the window
    assert decision.moving_average == pytest.approx(0.01) and not decision.promote  # exceeds, not equals
    assert state.window_means == [0.0, 0.0, 0.03] and state.stage == 2


def test_promotion_switched_off_never_promotes():
    decision, state = decide_promotion(PromotionState(), [[1.0, 1.0]], tau=0.01, window=1, enabled=False)
    assert not decision.promote and state.stage == 0 and decision.moving_average == 1.0


def test_median_student_of_the_argmax_dataset():
    per_student = [[0.1, 0.1, 0.1, 0.1], [0.4, 0.0, 0.3, 0.2]]  # dataset 1 has the higher mean
    decision, _ = decide_promotion(PromotionState(window_means=[1.0, 1.0]), per_student, tau=0.01, window=3)
    assert decision.promote and decision.dataset == 1 and decision.student == 3  # lower median: 0.2


def test_inner_steps_grow_after_each_promotion_up_to_the_cap():
    assert [inner_steps(s, 10, 5, 20) for s in range(4)] == [10, 15, 20, 20]


def test_a_first_step_promotes_alone_only_above_window_times_tau():
    """The zero padding (R_0 = 0) damps a lucky first step: at tau 0.01 and window 3 a first step needs a mean
    reward above 0.03 to promote on its own (the designed world's base teacher had 0.054 and did)."""
    from soar.algo.promotion import PromotionState, decide_promotion

    below, _ = decide_promotion(PromotionState(), [[0.029]], tau=0.01, window=3)
    above, state = decide_promotion(PromotionState(), [[0.031]], tau=0.01, window=3)
    assert not below.promote and below.moving_average == pytest.approx(0.029 / 3)
    assert above.promote and state.stage == 1
