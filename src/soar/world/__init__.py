"""The designed world: a problem family, a base model trained from scratch on it, SOAR's premise built in.

What it stands for: a model that, in its own voice as a teacher, poses problems of a kind and answers them
right, but that as a student, in another format, mostly fails them. Here the kind is two-digit sums (``t3``).
A from-scratch model of 0.37M parameters learns the teacher format at every tier. It sees the student format at
t1 and t2, and almost never (0.6% of student texts) at t3. It then writes right t3 answers as a teacher
(100%), and solves t3 as a student 39% of the time greedily and 27% sampled; 14% of t3 problems are never
solved in 32 samples (``soar world`` prints this table).  The hard set is ``soar filter``'s fail@128 of t3, as
for any model.

How the gap was found (``docs/world.md`` lists every design measured):
- The student format takes the teacher format's skill whole when it sees even a little of the kind spread
  over all problems (3%: 92% solved).
- It takes none of the skill when it sees none (0% solved), or when it sees only one region of the kind
  (that region is solved, with a sharp edge).
- A small, spread exposure leaves the skill half-taken, problem by problem.

Departures from the paper, each written where it is made:
- The model is a 3-layer Llama trained here, not Llama-3.2-3B-Instruct (:mod:`soar.world.build`).
- The prompts are the world's own short ones (:mod:`soar.world.family`, ``model.prompts: world``).
- The CPU-sized budgets are in ``configs/world.yaml``.

Floors: :mod:`soar.world.family` is pure (problems, kinds, texts, specs) and sits under ``soar.data`` and
``soar.config``. :mod:`soar.world.build` (torch, transformers) sits under ``soar.engines``, which calls it to
build the model named ``world``.
"""
