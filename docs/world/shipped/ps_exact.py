"""python ps_exact.py RUN [RUN ...]: greedy replies of each run's best promoted student on the 199 held-out hard test problems, compared as exact
digit strings with the gold answer (no Math-Verify); leading-zero check."""
import sys, torch
torch.set_num_threads(1)
from pathlib import Path
from soar.config import load_config
from soar.data.load import load_hard_set
from soar.engines.models import load_model
from soar.engines.trainer import load_trained
from soar.loops.run_dir import RunDir, load_part
from soar.engines.generation import HFGenerator, SamplingParams
from soar.data.prompts import student_prompt
from soar.math.extract import last_boxed
cfg = load_config("world")
test = load_hard_set(cfg.data).test
for run in sys.argv[1:]:
    r = RunDir(run)
    folder, info = r.best_promoted()
    model, tok = load_model(cfg.model)
    model = load_trained(model, cfg.student, load_part(folder, "student"))
    gen = HFGenerator(model, tok)
    outs = gen.generate([student_prompt(p.question, tok) for p in test], 1, SamplingParams(max_new_tokens=14, greedy=True))
    replies = [last_boxed(g[0].text) or "" for g in outs]
    right = sum(a == p.answer for a, p in zip(replies, test))
    lead0 = [p for p in test if p.answer.startswith("0")]
    dropped = sum(a == p.answer.lstrip("0") for a, p in zip(replies, test) if p.answer.startswith("0"))
    ex = next((p.question, a, p.answer) for a, p in zip(replies, test) if a == p.answer)
    print(f"{Path(run).name}: stage {info['stage']} step {info['step']}: greedy exact {right}/{len(test)} = {right/len(test):.3f}; "
          f"gold with leading 0: {len(lead0)}, written without it: {dropped}; e.g. {ex}")
