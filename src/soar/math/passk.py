r"""pass@k, the unbiased estimator of Chen et al. (2021), as used in Section 4.5.

    pass@k = 1 - C(n - c, k) / C(n, k)

for ``n`` samples of which ``c`` are correct.  The paper reports
k ∈ {1, 4, 8, 16, 32} from n = 32 samples per test problem, averaged over
problems.  Computed as a running product so large n neither overflows nor
loses precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

PAPER_KS: tuple[int, ...] = (1, 4, 8, 16, 32)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` draws without replacement from
    ``n`` samples (``c`` of them correct) is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


def mean_pass_at_k(
    correct_counts: Iterable[int], n: int = 32, ks: Sequence[int] = PAPER_KS
) -> dict[int, float]:
    """Average pass@k over problems, each with ``n`` samples and ``c`` correct.

    Returns ``{k: mean pass@k}`` for each ``k`` in ``ks`` (a fraction in [0, 1]).
    """
    counts = list(correct_counts)
    if not counts:
        raise ValueError("mean_pass_at_k needs at least one problem")
    return {k: sum(pass_at_k(n, c, k) for c in counts) / len(counts) for k in ks}
