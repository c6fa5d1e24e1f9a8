"""B.6 early stopping on curves with a known plateau point, window averages, seed aggregation."""

import math
import random

import pytest

from soar.algo.early_stopping import (
    aggregate_seeds,
    centred_moving_average,
    early_stopping_step,
    window_average,
)


def _saturating(steps, knee, noise=0.0, seed=0):
    """Linear rise from 0.1 to 0.6 over [0, knee], flat after; optional Gaussian noise."""
    rng = random.Random(seed)
    return [0.1 + 0.5 * min(t, knee) / knee + rng.gauss(0, noise) for t in range(steps)]


def test_moving_average_is_centred_and_cut_at_the_ends():
    assert centred_moving_average([0, 0, 3, 0, 0], 3) == [0, 1, 1, 1, 0]
    assert centred_moving_average([1, 2, 3, 4], 1) == [1, 2, 3, 4]
    assert centred_moving_average([2, 4], 25) == [3, 3]
    with pytest.raises(ValueError):
        centred_moving_average([1.0], 0)


def test_a_clean_knee_is_found_where_the_smoothed_slope_collapses():
    curve = _saturating(600, knee=300)
    stop = early_stopping_step(curve, window=25, threshold=0.15)
    # the 25-step average bends over [288, 312]; the slope drops below 15% of its maximum inside that bend
    assert 300 <= stop.step <= 312
    assert stop.max_slope == pytest.approx((0.5 / 300) / (0.6 - 0.1), rel=1e-6)  # normalised by the range


@pytest.mark.parametrize("seed", range(5))
def test_noisy_curves_stop_near_the_knee(seed):
    # reward noise SD 0.002 a step (0 misplaced stops in 200 seeds; at SD 0.005 the rule stops early on half)
    curve = _saturating(1500, knee=500, noise=0.002, seed=seed)
    stop = early_stopping_step(curve, window=25, threshold=0.15)
    assert 470 <= stop.step <= 540, stop.step


def test_a_late_takeoff_is_not_a_plateau():
    curve = [0.0] * 200 + [min(1.0, (t - 200) / 200) if t >= 200 else 0.0 for t in range(200, 800)]
    stop = early_stopping_step(curve, window=25)
    assert 390 <= stop.step <= 420


def test_flat_and_still_rising_curves():
    assert early_stopping_step([0.2] * 50).step == 12  # the first step whose 25-step window fits
    assert early_stopping_step([0.5, 0.4, 0.3, 0.2]).step == 0
    rising = [t / 100 for t in range(100)]
    assert early_stopping_step(rising, window=5).step == 99


def test_the_threshold_moves_the_point_but_the_normalisation_does_not():
    curve = [1 - math.exp(-t / 100) for t in range(1000)]
    early, late = early_stopping_step(curve, 25, 0.3).step, early_stopping_step(curve, 25, 0.1).step
    assert early < late
    scaled = [10 * v + 3 for v in curve]
    assert early_stopping_step(scaled, 25, 0.15).step == early_stopping_step(curve, 25, 0.15).step
    # exp decay: the slope falls to 15% of its value at step 12 (the first full window) 190 steps later
    assert early_stopping_step(curve, 25, 0.15).step == pytest.approx(12 + 190, abs=3)


def test_window_average_over_the_evaluations_after_the_stop():
    points = {0: {1: 0.0, 4: 0.1}, 10: {1: 0.2, 4: 0.4}, 20: {1: 0.4, 4: 0.6}, 30: {1: 0.9, 4: 0.9}}
    assert window_average(points, 10, 10) == pytest.approx({1: 0.3, 4: 0.5})
    assert window_average(points, 5, 200) == pytest.approx({1: 0.5, 4: 0.6333333})
    assert window_average(points, 31, 5) == {1: 0.9, 4: 0.9}  # nothing after: the last evaluation
    assert window_average(points, 1, 5) == {1: 0.2, 4: 0.4}  # nothing inside: the next one


def test_seed_aggregation_uses_the_sample_standard_deviation():
    agg = aggregate_seeds([0.2, 0.4, 0.6])
    assert agg.mean == pytest.approx(0.4) and agg.sd == pytest.approx(0.2) and agg.n == 3
    assert str(agg) == "0.400 ± 0.200"
    assert aggregate_seeds([0.7]).sd == 0.0
    with pytest.raises(ValueError):
        aggregate_seeds([])
