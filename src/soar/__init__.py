"""soar: Self-Optimization via Asymmetric RL (arXiv 2601.18778).

A teacher language model learns, by meta-RL, to write synthetic question/answer
pairs that get a student model unstuck on problems it cannot solve.  The pure
math lives in :mod:`soar.math` and :mod:`soar.algo`; data in :mod:`soar.data`.
"""

__version__ = "0.1.0"
