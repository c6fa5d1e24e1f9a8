"""Vendi Score and n-gram kernel on cases computed by hand."""

import math

import numpy as np
import pytest

from soar.analysis.diversity import (
    cosine_kernel,
    diversity,
    mean_pairwise_cosine_distance,
    ngram_kernel,
    ngram_matrix,
    subsampled_vendi,
    vendi_score,
)


def test_identical_items_score_one_and_orthogonal_items_score_their_number():
    assert vendi_score(np.ones((6, 6))) == pytest.approx(1.0)
    for k in (1, 2, 5):
        assert vendi_score(np.eye(k)) == pytest.approx(k)
    assert vendi_score(ngram_kernel(["What is 6 + 7?"] * 4)) == pytest.approx(1.0)
    assert vendi_score(ngram_kernel(["alpha beta", "gamma delta", "eps zeta"])) == pytest.approx(3.0)


def test_two_items_of_similarity_s():
    s = 0.6  # K/2 has eigenvalues (1 + s)/2 and (1 - s)/2
    p = np.array([(1 + s) / 2, (1 - s) / 2])
    assert vendi_score(np.array([[1, s], [s, 1]])) == pytest.approx(math.exp(-(p * np.log(p)).sum()))


def test_ngram_kernel_counts_words_and_symbols():
    X = ngram_matrix(["What is 47 + 8?", "what IS 47 + 8 ?"], orders=(1,))
    assert X.shape == (2, 6) and (X[0] == X[1]).all()  # what, is, 47, +, 8, ?  (case folded)
    K = ngram_kernel(["a b", "a c"], orders=(1,))  # one shared unigram of two: cosine 1/2
    assert K[0, 1] == pytest.approx(0.5) and K[0, 0] == 1.0
    assert ngram_kernel(["", "x"])[0, 1] == 0.0 and vendi_score(ngram_kernel(["", "x"])) == pytest.approx(2.0)


def test_cosine_distance_and_subsampling():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert mean_pairwise_cosine_distance(vectors) == pytest.approx((1 + (1 - 2 ** -0.5) * 2) / 3)
    assert mean_pairwise_cosine_distance(np.ones((3, 2))) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    K = cosine_kernel(rng.random((40, 5)))
    mean, sd, draws = subsampled_vendi(K, size=10, iterations=20, seed=1)
    assert draws == 20 and sd > 0 and 1 <= mean <= 10
    assert subsampled_vendi(K, size=10, iterations=20, seed=1) == (mean, sd, draws)  # seeded
    assert subsampled_vendi(K, size=40, iterations=20)[1:] == (0.0, 1)  # no larger than size: once
    assert diversity(np.eye(3))["vendi"] == pytest.approx(3.0)


