import itertools
import math

import pytest

from soar.math.passk import PAPER_KS, mean_pass_at_k, pass_at_k


def brute_force(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 10])
def test_matches_brute_force_over_all_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_closed_form_and_edges():
    assert pass_at_k(32, 0, 32) == 0.0
    assert pass_at_k(32, 1, 32) == 1.0
    assert pass_at_k(32, 1, 1) == pytest.approx(1 / 32)
    assert pass_at_k(128, 3, 16) == pytest.approx(1 - math.comb(125, 16) / math.comb(128, 16))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        mean_pass_at_k([], 32)


def test_mean_over_problems_paper_ks():
    counts = [0, 1, 16, 32]
    result = mean_pass_at_k(counts, n=32)
    assert list(result) == list(PAPER_KS)
    for k in PAPER_KS:
        expected = sum(pass_at_k(32, c, k) for c in counts) / 4
        assert result[k] == pytest.approx(expected)
    assert result[1] == pytest.approx((0 + 1 / 32 + 0.5 + 1) / 4)
    # pass@k never decreases with k
    values = [result[k] for k in PAPER_KS]
    assert values == sorted(values)
