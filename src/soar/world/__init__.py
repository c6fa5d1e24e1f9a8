"""The designed world: a problem family, a base model trained from scratch on it, SOAR's premise built in.

What it stands for.  The paper's student is stuck on hard problems (0/128) that it could solve with the
skills it has, if those skills reached the format it answers in; its teacher, the same model in another role,
writes problems it answers right.  Here the skill is adding 8-digit numbers (written least-significant digit
first, :mod:`soar.world.family`).  The model learned it whole in the teacher format (every kind answered right
greedily).  In the student format its pretraining texts dropped each carry with probability 0.78, so as a
student it writes a carry-free sum right and loses each carry most of the time: a problem with K carries is
solved with probability about 0.22^K.  Hardness compounds:

- the hard set (400 problems with 8 carries, kept where the exact success, the teacher-forced probability of
  the gold reply, is below 1e-5, then ``soar filter``'s fail@128: 398) is solved about once in 600,000
  samples (mean exact success 1.7e-6), so Hard-Only's students see no success in an inner loop and stay at 0;
- problems with 1-3 carries are solved sometimes (exact success 0.22, 0.045, 0.009), and 16 of them with
  3 carries lift the hard set by +0.59 in one inner loop (``soar probe``, ``docs/world.md``): the stepping
  stones;
- the base teacher writes carry-free problems 75% of the time and 1-3 carries ~9% (``soar world`` prints
  it), so a dataset of its own rarely holds enough stepping stones to move the hard set (+0.025), and learning
  to write them is the teacher's job.

The student knob is one (carries, in one format), so a run has one stage: after a promotion or two the
baseline solves most of the hard set and the reward falls.  ``docs/world.md`` lists every design measured
(V1-V13) and why this one.

Departures from the paper, each written where it is made:
- The model is a 3-layer Llama of 0.65M parameters trained here, not Llama-3.2-3B-Instruct
  (:mod:`soar.world.build`); its weights and hard set ship in the package (``model/``, ``hard/``), so every
  machine runs the same world (a rebuild on another CPU kind rounds differently and is another world).
- The prompts are the world's own short ones (:mod:`soar.world.family`, ``model.prompts: world``).
- The CPU-sized budgets, a binary reward and the inner loop's settings are in ``configs/world.yaml``.

Floors: :mod:`soar.world.family` is pure (problems, kinds, texts, specs) and sits under ``soar.data`` and
``soar.config``. :mod:`soar.world.build` (torch, transformers) sits under ``soar.engines``, which calls it to
find or build the model named ``world``.
"""
