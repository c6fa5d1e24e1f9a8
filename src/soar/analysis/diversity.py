r"""Question diversity: the Vendi Score (Friedman & Dieng, 2023) and mean pairwise cosine distance.

For n items with a positive semi-definite similarity kernel K (K_ii = 1),

    VS(K) = exp( - sum_i lambda_i log lambda_i ),   lambda_i the eigenvalues of K / n

(0 log 0 = 0): the exponential of the Shannon entropy of K/n's spectrum, the
"effective number of distinct items".  n identical items score 1; n items with
K = I (pairwise orthogonal) score n.

Kernels:

* ``ngram`` (offline, no model): K_ij = cosine similarity of the bag-of-n-grams
  count vectors of questions i and j, word n-grams for n in ``orders``
  (default 1 and 2) over lower-cased word tokens (``\w+`` and single
  non-space symbols, so ``47 + 8`` is three tokens).  The vendi-score
  package's text kernel is also an n-gram cosine; this one is written here so
  the tokenisation is fixed and tested.
* ``embedding``: K_ij = cosine similarity of embeddings (negative similarities
  clipped to 0, so K stays a similarity).  The paper embeds with Qwen3-8B
  (Table 1) and EmbeddingGemma-300M (Fig. 17b); neither can be fetched here
  (no Hub access), so :func:`soar.analysis.embed.embed` mean-pools the last
  hidden states of any local causal LM (by default the run's own model).
  Scores from different embedders are not comparable.

Table 1 reports VS on 128 questions by "bootstrap subsampling (k = 100)":
:func:`subsampled_vendi` draws ``size`` questions *without* replacement
(a duplicate would lower the score by itself) ``iterations`` times and
returns mean and sample SD; a set no larger than ``size`` is scored once.
Fig. 17b's measure is :func:`mean_pairwise_cosine_distance`.

Pure numpy; nothing is evaluated.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


def vendi_score(kernel: np.ndarray) -> float:
    """VS of a similarity matrix (symmetric, ones on the diagonal)."""
    K = np.asarray(kernel, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"a kernel is a square matrix, got shape {K.shape}")
    n = K.shape[0]
    if n == 0:
        return 0.0
    eigenvalues = np.clip(np.linalg.eigvalsh((K + K.T) / (2 * n)), 0.0, None)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    eigenvalues = eigenvalues / eigenvalues.sum()
    return float(math.exp(-float(np.sum(eigenvalues * np.log(eigenvalues)))))


def ngram_matrix(texts: Sequence[str], orders: Sequence[int] = (1, 2)) -> np.ndarray:
    """``[len(texts), vocabulary]`` counts of each text's word n-grams (n in ``orders``)."""
    counts = []
    for text in texts:
        tokens = _TOKEN.findall(text.lower())
        counts.append(Counter(tuple(tokens[i:i + k]) for k in orders for i in range(len(tokens) - k + 1)))
    vocab = {gram: i for i, gram in enumerate(sorted({g for c in counts for g in c}))}
    X = np.zeros((len(texts), max(len(vocab), 1)))
    for row, c in enumerate(counts):
        for gram, count in c.items():
            X[row, vocab[gram]] = count
    return X


def ngram_kernel(texts: Sequence[str], orders: Sequence[int] = (1, 2)) -> np.ndarray:
    """Cosine similarity of n-gram count vectors (an empty text is similar only to itself)."""
    return cosine_kernel(ngram_matrix(texts, orders))


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    X = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def cosine_kernel(vectors: np.ndarray) -> np.ndarray:
    """K_ij = max(0, cos(v_i, v_j)), K_ii = 1 (a zero vector is similar only to itself)."""
    unit = _unit(vectors)
    K = np.clip(unit @ unit.T, 0.0, 1.0)
    np.fill_diagonal(K, 1.0)
    return K


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float:
    """Mean of 1 - cos(v_i, v_j) over pairs i < j (Fig. 17b's diversity of teacher completions)."""
    unit = _unit(vectors)
    n = unit.shape[0]
    if n < 2:
        return 0.0
    similarity = unit @ unit.T
    upper = similarity[np.triu_indices(n, k=1)]
    return max(0.0, float(np.mean(1.0 - upper)))  # rounding can leave -1e-16 for identical items


def subsampled_vendi(kernel: np.ndarray, size: int = 128, iterations: int = 100, seed: int = 0
                     ) -> tuple[float, float, int]:
    """``(mean VS, sample SD, draws)`` over ``iterations`` subsets of ``size`` items (rows and columns of
    ``kernel``) drawn without replacement; a set of at most ``size`` items is scored once (SD 0)."""
    if size < 1 or iterations < 1:
        raise ValueError("size and iterations must be at least 1")
    n = kernel.shape[0]
    if n <= size:
        return vendi_score(kernel), 0.0, 1
    rng = random.Random(seed)
    scores = []
    for _ in range(iterations):
        pick = sorted(rng.sample(range(n), size))
        scores.append(vendi_score(kernel[np.ix_(pick, pick)]))
    mean = sum(scores) / len(scores)
    sd = math.sqrt(sum((x - mean) ** 2 for x in scores) / (len(scores) - 1)) if len(scores) > 1 else 0.0
    return mean, sd, len(scores)


def diversity(vectors: np.ndarray, size: int = 128, iterations: int = 100, seed: int = 0) -> dict[str, float]:
    """Vendi Score (cosine kernel of ``vectors``, subsampled) and mean pairwise cosine distance."""
    mean, sd, draws = subsampled_vendi(cosine_kernel(vectors), size, iterations, seed)
    return {"vendi": mean, "vendi_sd": sd, "draws": draws, "items": int(vectors.shape[0]),
            "pairwise_cosine_distance": mean_pairwise_cosine_distance(vectors)}
