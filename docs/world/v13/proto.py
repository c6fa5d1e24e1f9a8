r"""world34 prototype: 5-digit addition (carries) and subtraction (borrows), answers LSB first.

Teacher format: always right.  Student format: every carry/borrow dropped w.p. q per column.
Subcommands:
  python3 proto.py build NAME [key=value ...]   pretrain -> NAME/ (model, tokenizer, spec.json, world.json)
  python3 proto.py measure NAME                 gap table, hard-set exact success, teacher kind distribution
  python3 proto.py probe NAME lr1,lr2 seeds kinds   RLOO probe (10 steps, group 8, 16 questions)
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

torch.set_num_threads(1)
from soar.world.build import make_tokenizer  # noqa: E402

HERE = Path.cwd()
"""Built worlds go in NAME/ under the folder the script is run from."""
TEACHER_PROMPT = "Pose a new problem.\n"
STUDENT_PROMPT = "Solve: <QUESTION>\nAnswer: "
DIGITS = 5

# ---------------------------------------------------------------- family (pure)


def carries(a: int, b: int) -> int:
    c, n = 0, 0
    for i in range(DIGITS):
        s = a // 10**i % 10 + b // 10**i % 10 + c
        c = int(s >= 10)
        n += c
    return n


def borrows(a: int, b: int) -> int:
    c, n = 0, 0
    for i in range(DIGITS):
        s = a // 10**i % 10 - b // 10**i % 10 - c
        c = int(s < 0)
        n += c
    return n


def answer_digits(a: int, b: int, op: str, q: float = 0.0, rng: random.Random | None = None) -> str:
    """LSB-first answer; each carry/borrow into the next column dropped w.p. q (student format)."""
    out, c = [], 0
    for i in range(DIGITS):
        x, y = a // 10**i % 10, b // 10**i % 10
        s = x + y + c if op == "+" else x - y - c
        out.append(str(s % 10))
        c = int(s >= 10) if op == "+" else int(s < 0)
        if c and q > 0 and rng.random() < q:
            c = 0
    if op == "+":
        out.append(str(c))
    return "".join(out)


def set_digits(n: int) -> None:
    """Operand length (spec['digits'], default 5): the family's functions and the question pattern follow it."""
    global DIGITS, _Q
    DIGITS = n
    _Q = re.compile(r"^(\d{%d})([+-])(\d{%d})$" % (DIGITS, DIGITS))


REV = {"ops": False}
"""ops=True: operands written least-significant digit first too (set from spec['rev_ops'])."""


def _w(x: int) -> str:
    s = f"{x:0{DIGITS}d}"
    return s[::-1] if REV["ops"] else s


def question(a: int, b: int, op: str) -> str:
    return f"{_w(a)}{op}{_w(b)}"


_Q = re.compile(r"^(\d{%d})([+-])(\d{%d})$" % (DIGITS, DIGITS))


def parse(q: str):
    m = _Q.match(q.strip())
    if not m:
        return None
    x, op, y = m.group(1), m.group(2), m.group(3)
    if REV["ops"]:
        x, y = x[::-1], y[::-1]
    a, b = int(x), int(y)
    if op == "-" and a < b:
        return None
    return a, op, b


def gold(q: str) -> str | None:
    p = parse(q)
    return None if p is None else answer_digits(p[0], p[2], p[1])


def kind_of(q: str) -> str:
    p = parse(q)
    if p is None:
        return "other"
    a, op, b = p
    return f"add-c{carries(a, b)}" if op == "+" else f"sub-b{borrows(a, b)}"


def random_pair(op: str, rng: random.Random):
    a, b = rng.randrange(10**DIGITS), rng.randrange(10**DIGITS)
    if op == "-" and a < b:
        a, b = b, a
    return a, b


def make_kind(kind: str, rng: random.Random):
    """(a, op, b) of kind 'add-cK' / 'sub-bK' / 'add-c4+' etc. or 'add-any' / 'sub-any' (rejection sampling)."""
    op = "+" if kind.startswith("add") else "-"
    spec = kind.split("-")[1][1:]
    while True:
        a, b = random_pair(op, rng)
        if spec == "ny":  # 'any'
            return a, op, b
        n = carries(a, b) if op == "+" else borrows(a, b)
        if spec.endswith("+"):
            if n >= int(spec[:-1]):
                return a, op, b
        elif n == int(spec):
            return a, op, b


def teacher_completion(q: str, ans: str) -> str:
    return f"<question>{q}</question><answer>\\boxed{{{ans}}}</answer>"


def student_prompt(q: str) -> str:
    return STUDENT_PROMPT.replace("<QUESTION>", q)


def student_completion(ans: str) -> str:
    return f"\\boxed{{{ans}}}"


DEFAULT_SPEC = dict(
    seed=0, layers=3, hidden=128, heads=4, inter=384, steps=3000, batch=32, lr=1e-3, warmup=100,
    q=0.9, teacher_share=0.5, rev_ops=True, warm_steps=1500, warm_until=0.9, warm_mix={"add-c0": 0.25, "add-c1": 0.04, "add-c2": 0.03, "add-c3": 0.06, "add-c4+": 0.12},
    # teacher-format kinds (relative weights): rare 1-carry/1-borrow, lots of no-carry and many-carry
    teacher_mix={"add-c0": 0.25, "add-c1": 0.04, "add-c2": 0.03, "add-c3": 0.06, "add-c4+": 0.12,
                 "sub-b0": 0.25, "sub-b1": 0.04, "sub-b2": 0.03, "sub-b3": 0.06, "sub-b4+": 0.12},
    # student-format kinds: uniformly random operands
    student_mix={"add-any": 0.5, "sub-any": 0.5},
)


def training_text(rng: random.Random, spec: dict, warm: bool = False) -> str:
    """warm: the curriculum's first phase (teacher format only, spec['warm_mix']) that breaks the plateau."""
    if warm and rng.random() < spec.get("warm_student_share", 0.0):
        teacher, mix = False, spec["warm_student_mix"]
    else:
        teacher = warm or rng.random() < spec["teacher_share"]
        mix = spec["warm_mix"] if warm else spec["teacher_mix"] if teacher else spec["student_mix"]
    kind = rng.choices(list(mix), list(mix.values()))[0]
    a, op, b = make_kind(kind, rng)
    q = question(a, b, op)
    if teacher:
        return TEACHER_PROMPT + teacher_completion(q, answer_digits(a, b, op))
    return student_prompt(q) + student_completion(answer_digits(a, b, op, spec["q"], rng))


# ---------------------------------------------------------------- model


def make_model(spec: dict, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=spec["hidden"], intermediate_size=spec["inter"],
                      num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                      num_key_value_heads=spec["heads"], max_position_embeddings=256, tie_word_embeddings=True,
                      bos_token_id=None, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(spec["seed"])
    return LlamaForCausalLM(cfg)


def build(name: str, spec: dict):
    REV["ops"] = spec.get("rev_ops", False)
    set_digits(spec.get("digits", 5))
    tok = make_tokenizer()
    model = make_model(spec, len(tok))
    model.train()
    rng = random.Random(spec["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=0.01, betas=(0.9, 0.98))
    eos = tok.eos_token_id
    t0 = time.perf_counter()
    warm_left, warm_done = spec.get("warm_steps", 0), None
    for step in range(spec["steps"]):
        warm = warm_done is None and step < warm_left
        if warm and step >= 200 and step % 100 == 0:
            model.eval()
            acc = teacher_greedy_acc(model, tok, problems("add-any", 50, "mon"))
            model.train()
            print(f"  warm step {step}: teacher add {acc:.2f}", flush=True)
            if acc >= spec.get("warm_until", 2.0):
                warm_done, warm = step, False
        if not warm and warm_done is None:
            warm_done = step
        enc = [tok(training_text(rng, spec, warm), add_special_tokens=False)["input_ids"] + [eos] for _ in range(spec["batch"])]
        w = max(map(len, enc))
        ids = torch.tensor([r + [0] * (w - len(r)) for r in enc])
        mask = torch.tensor([[1] * len(r) + [0] * (w - len(r)) for r in enc])
        lr = spec["lr"] * min(1.0, (step + 1) / spec["warmup"]) * 0.5 * (1 + math.cos(math.pi * step / spec["steps"]))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(input_ids=ids, labels=ids.masked_fill(mask == 0, -100)).loss  # right padding + causal: no mask needed
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == spec["steps"] - 1:
            print(f"step {step} loss {loss.item():.4f} t={time.perf_counter() - t0:.0f}s", flush=True)
        if (step + 1) % 300 == 0:
            model.eval()
            accs = [teacher_greedy_acc(model, tok, problems(k, 50, "mon")) for k in ("add-any", "sub-any")]
            accs += [greedy_acc(model, tok, problems(k, 50, "mon")) for k in ("add-c0", "sub-b0")]
            model.train()
            print(f"  monitor step {step + 1}: teacher add {accs[0]:.2f} sub {accs[1]:.2f}; student add-c0 {accs[2]:.2f} sub-b0 {accs[3]:.2f}", flush=True)
    secs = time.perf_counter() - t0
    model.eval()
    model.config.architectures = ["LlamaForCausalLM"]
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = tok.pad_token_id
    folder = HERE / name
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "spec.json").write_text(json.dumps(spec, indent=1))
    (folder / "world.json").write_text(json.dumps({"warm_done": warm_done, "seconds": round(secs, 1), "final_loss": loss.item(),
                                                   "params": sum(p.numel() for p in model.parameters()),
                                                   "threads": 1, "torch": torch.__version__}, indent=1))
    print(f"built {name} in {secs:.0f}s")


def load(name: str):
    from transformers import LlamaForCausalLM

    folder = HERE / name
    model = LlamaForCausalLM.from_pretrained(folder)
    model.eval()
    spec = json.loads((folder / "spec.json").read_text())
    REV["ops"] = spec.get("rev_ops", False)
    set_digits(spec.get("digits", 5))
    return model, make_tokenizer(), spec


# ---------------------------------------------------------------- sampling / scoring


@torch.no_grad()
def sample(model, prompt_ids: torch.Tensor, max_new: int, greedy: bool, gen: torch.Generator | None = None,
           temperature: float = 1.0) -> torch.Tensor:
    """prompt_ids (B, P) all the same length (no padding). Returns (B, max_new) new tokens (pad after EOS)."""
    out = model(input_ids=prompt_ids, use_cache=True)
    past, logits = out.past_key_values, out.logits[:, -1]
    B = prompt_ids.shape[0]
    new = torch.zeros(B, max_new, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(max_new):
        if greedy:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        nxt = nxt.masked_fill(done, 0)
        new[:, t] = nxt
        done |= nxt == 1
        if bool(done.all()):
            break
        out = model(input_ids=nxt[:, None], past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
    return new


def decode(tok, row: torch.Tensor) -> str:
    ids = row.tolist()
    if 1 in ids:
        ids = ids[: ids.index(1)]
    return tok.decode([i for i in ids if i != 0])


_BOX = re.compile(r"\\boxed\{([^}]*)\}")


def boxed(text: str) -> str | None:
    m = _BOX.search(text)
    return m.group(1) if m else None


def enc(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def student_batch(tok, qs: list[str]) -> torch.Tensor:
    return torch.tensor([enc(tok, student_prompt(q)) for q in qs])


@torch.no_grad()
def greedy_acc(model, tok, qs: list[str], answers: list[str] | None = None) -> float:
    if not qs:
        return float("nan")
    answers = answers or [gold(q) for q in qs]
    new = sample(model, student_batch(tok, qs), DIGITS + 5, greedy=True)
    return sum(boxed(decode(tok, r)) == a for r, a in zip(new, answers)) / len(qs)


def completion_logprob(model, tok, prompts: list[str], completions: list[str], grad=False):
    """Sum of log p(completion tokens + EOS | prompt); prompts equal length; completions may differ (right pad)."""
    p_ids = [enc(tok, p) for p in prompts]
    c_ids = [enc(tok, c) + [1] for c in completions]
    P = len(p_ids[0])
    assert all(len(x) == P for x in p_ids)
    W = max(map(len, c_ids))
    ids = torch.tensor([p + c + [0] * (W - len(c)) for p, c in zip(p_ids, c_ids)])
    mask = torch.tensor([[1] * len(c) + [0] * (W - len(c)) for c in c_ids], dtype=torch.float)
    with torch.set_grad_enabled(grad):
        logits = model(input_ids=ids).logits[:, P - 1: -1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, ids[:, P:, None]).squeeze(-1)
    return (lp * mask).sum(1)


@torch.no_grad()
def exact_success(model, tok, qs: list[str]) -> list[float]:
    out = []
    for i in range(0, len(qs), 128):
        chunk = qs[i:i + 128]
        lp = completion_logprob(model, tok, [student_prompt(q) for q in chunk],
                                [student_completion(gold(q)) for q in chunk])
        out += lp.exp().tolist()
    return out


@torch.no_grad()
def teacher_greedy_acc(model, tok, qs: list[str]) -> float:
    """Teacher format: prompt + <question>Q</question><answer> forced, greedy completion."""
    prompts = [TEACHER_PROMPT + f"<question>{q}</question><answer>" for q in qs]
    ids = torch.tensor([enc(tok, p) for p in prompts])
    new = sample(model, ids, DIGITS + 7, greedy=True)
    return sum(boxed(decode(tok, r)) == gold(q) for r, q in zip(new, qs)) / len(qs)


@torch.no_grad()
def teacher_samples(model, tok, n: int, seed: int, temperature: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([enc(tok, TEACHER_PROMPT)] * n)
    new = sample(model, ids, 2 * DIGITS + 20, greedy=False, gen=gen, temperature=temperature)
    out = []
    for r in new:
        text = decode(tok, r)
        m = re.match(r"^<question>(.*?)</question><answer>(.*?)</answer>$", text)
        if m is None:
            out.append(("", None, text))
            continue
        out.append((m.group(1), boxed(m.group(2)), text))
    return out


# ---------------------------------------------------------------- measure


def problems(kind: str, n: int, seed) -> list[str]:
    rng, seen, qs = random.Random(f"{seed}:{kind}"), set(), []
    while len(qs) < n:
        a, op, b = make_kind(kind, rng)
        q = question(a, b, op)
        if q not in seen:
            seen.add(q)
            qs.append(q)
    return qs


KINDS = ["add-c0", "add-c1", "add-c2", "add-c3", "add-c4", "add-c5", "sub-b0", "sub-b1", "sub-b2", "sub-b3", "sub-b4"]


def measure(name: str):
    model, tok, spec = load(name)
    ops = sorted({k.split("-")[0] for k in spec["teacher_mix"]})
    kinds = [f"{op}-{'c' if op == 'add' else 'b'}{c}" for op in ops for c in range(DIGITS + (op == "add"))]
    hard_kinds = [os.environ.get("HARD_" + op.upper(), f"{op}-{'c' if op == 'add' else 'b'}4+") for op in ops]
    res = {"name": name, "gap": {}, "teacher": {}}
    print(f"## measure {name}  q={spec['q']}")
    print("| kind | teacher greedy | student greedy | student exact success (mean) | min | max |")
    print("|---|---|---|---|---|---|")
    for k in kinds:
        qs = problems(k, 200, "gap")
        t = teacher_greedy_acc(model, tok, qs)
        s = greedy_acc(model, tok, qs)
        e = exact_success(model, tok, qs)
        res["gap"][k] = dict(teacher=t, student=s, exact=sum(e) / len(e), exact_min=min(e), exact_max=max(e))
        print(f"| {k} | {t:.3f} | {s:.3f} | {sum(e) / len(e):.2e} | {min(e):.1e} | {max(e):.1e} |", flush=True)
    for label, qs in ((k, problems(k, 200, "hardset")) for k in hard_kinds):
        e = exact_success(model, tok, qs)
        g = greedy_acc(model, tok, qs)
        res[label] = dict(mean=sum(e) / len(e), max=max(e), greedy=g)
        print(f"hard {label}: exact mean {sum(e) / len(e):.2e} max {max(e):.2e} greedy {g:.3f}")
    ts = teacher_samples(model, tok, 500, seed=1234)
    kinds, right = Counter(), Counter()
    for q, a, _ in ts:
        k = kind_of(q) if q else "unparsed"
        kinds[k] += 1
        right[k] += a is not None and a == gold(q)
    print("teacher 500 samples @T=1: kind share (right share)")
    for k in sorted(kinds):
        print(f"  {k}: {kinds[k] / 500:.3f} (right {right[k] / max(1, kinds[k]):.2f})")
        res["teacher"][k] = dict(share=kinds[k] / 500, right=right[k] / max(1, kinds[k]))
    (HERE / name / "measure.json").write_text(json.dumps(res, indent=1))


# ---------------------------------------------------------------- RLOO probe


def rloo_step(model, tok, opt, prompt_ids, answers, group, gen) -> int:
    """One RLOO step (binary exact-match reward, leave-one-out baseline, loss over the sampled tokens up to and
    including EOS, divided by all samples); returns the successes sampled.  A step with no advantage is skipped."""
    model.eval()
    new = sample(model, prompt_ids, DIGITS + 5, greedy=False, gen=gen)
    model.train()
    texts = [decode(tok, r) for r in new]
    rewards = torch.tensor([float(boxed(t) == answers[i // group]) for i, t in enumerate(texts)]).view(-1, group)
    adv = (rewards - (rewards.sum(1, keepdim=True) - rewards) / (group - 1)).view(-1)
    if adv.abs().sum() == 0:
        return int(rewards.sum())
    P = prompt_ids.shape[1]
    ids = torch.cat([prompt_ids, new], 1)
    mask = torch.ones_like(new, dtype=torch.float)
    for i in range(new.shape[0]):
        row = new[i].tolist()
        if 1 in row:
            mask[i, row.index(1) + 1:] = 0
    keep = adv != 0
    logits = model(input_ids=ids[keep]).logits[:, P - 1: -1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[keep][:, P:, None]).squeeze(-1)
    loss = -(adv[keep] * (lp * mask[keep]).sum(1)).sum() / adv.numel()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return int(rewards.sum())


def rloo_student(name: str, data: list[tuple[str, str]], lr: float, seed: int, evalset, steps=10, group=8,
                 log=False):
    model, tok, _ = load(name)
    model.train()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    qs = [q for q, _ in data]
    answers = [a for _, a in data]
    prompt_ids = student_batch(tok, qs).repeat_interleave(group, 0)
    successes = 0
    for step in range(steps):
        successes += rloo_step(model, tok, opt, prompt_ids, answers, group, gen)
    model.eval()
    return {k: greedy_acc(model, tok, v) for k, v in evalset.items()}, successes


def datasets(name: str, model, tok):
    data = {}
    oracle = problems("add-c4+", 8, "probe") + problems("sub-b4+", 8, "probe")
    data["oracle"] = [(q, gold(q)) for q in oracle]
    data["add-c1"] = [(q, gold(q)) for q in problems("add-c1", 16, "probe")]
    data["sub-b1"] = [(q, gold(q)) for q in problems("sub-b1", 16, "probe")]
    data["add-c0"] = [(q, gold(q)) for q in problems("add-c0", 16, "probe")]
    rng = random.Random("junk")
    data["junk"] = [(q, "".join(rng.choice("0123456789") for _ in gold(q))) for q in oracle]
    ts = [(q, a) for q, a, _ in teacher_samples(model, tok, 200, seed=99) if q and parse(q) and a is not None]
    data["teacher"] = ts[:16]
    return data


def probe(name: str, lrs: list[float], seeds: int, kinds: list[str], tag: str = "probe"):
    model, tok, _ = load(name)
    evalset = {"add-hard": problems("add-c4+", 50, "heldout"), "sub-hard": problems("sub-b4+", 50, "heldout")}
    base = {k: greedy_acc(model, tok, v) for k, v in evalset.items()}
    data = datasets(name, model, tok)
    tkinds = Counter(kind_of(q) for q, _ in data["teacher"])
    tright = sum(a == gold(q) for q, a in data["teacher"])
    print(f"base greedy on held-out hard: {base}; teacher dataset kinds {dict(tkinds)} right {tright}/16", flush=True)
    results = defaultdict(list)
    path = HERE / name / f"{tag}.json"
    t_student = []
    for lr in lrs:
        for kind in kinds:
            for s in range(seeds):
                t0 = time.perf_counter()
                acc, succ = rloo_student(name, data[kind], lr, seed=s, evalset=evalset)
                t_student.append(time.perf_counter() - t0)
                gain = {k: acc[k] - base[k] for k in acc}
                results[f"{lr}|{kind}"].append(dict(seed=s, gain=gain, successes=succ))
                print(f"lr {lr} {kind} seed {s}: gain add {gain['add-hard']:+.2f} sub {gain['sub-hard']:+.2f} "
                      f"successes {succ} ({t_student[-1]:.1f}s)", flush=True)
                path.write_text(json.dumps(dict(base=base, teacher_kinds=tkinds, results=results,
                                                sec_per_student=sum(t_student) / len(t_student)), indent=1))
    print(f"\n| lr | kind | add-hard gain | sub-hard gain | n | successes (total) |\n|---|---|---|---|---|---|")
    for key, rows in results.items():
        lr, kind = key.split("|")
        cells = []
        for k in ("add-hard", "sub-hard"):
            v = [r["gain"][k] for r in rows]
            m = sum(v) / len(v)
            se = (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 / len(v) ** 0.5 if len(v) > 1 else 0
            cells.append(f"{m:+.3f} ± {se:.3f}")
        print(f"| {lr} | {kind} | {cells[0]} | {cells[1]} | {len(rows)} | {sum(r['successes'] for r in rows)} |")
    print(f"sec per student (10 steps + eval): {sum(t_student) / len(t_student):.1f}")


if __name__ == "__main__":
    cmd, name = sys.argv[1], sys.argv[2]
    if cmd == "build":
        spec = json.loads(json.dumps(DEFAULT_SPEC))
        for kv in sys.argv[3:]:
            k, v = kv.split("=", 1)
            spec[k] = json.loads(v)
        build(name, spec)
    elif cmd == "measure":
        measure(name)
    elif cmd == "probe":
        lrs = [float(x) for x in sys.argv[3].split(",")]
        seeds = int(sys.argv[4])
        kinds = sys.argv[5].split(",") if len(sys.argv) > 5 else ["oracle", "add-c1", "sub-b1", "add-c0", "junk", "teacher"]
        probe(name, lrs, seeds, kinds, tag=sys.argv[6] if len(sys.argv) > 6 else "probe")


def cont(src: str, dst: str, steps: int, lr: float, seed: int = 1):
    """Continue pretraining a built model on the full mix (same spec) for `steps` more batches, cosine from lr."""
    model, tok, spec = load(src)
    import os
    if os.environ.get("CONT_STUDENT_MIX"):
        spec = dict(spec, cont_student_mix=json.loads(os.environ["CONT_STUDENT_MIX"]))
    train_spec = dict(spec, student_mix=spec.get("cont_student_mix", spec["student_mix"]))
    model.train()
    rng = random.Random(f"cont:{seed}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    t0 = time.perf_counter()
    for step in range(steps):
        enc_ = [enc(tok, training_text(rng, train_spec)) + [1] for _ in range(spec["batch"])]
        w = max(map(len, enc_))
        ids = torch.tensor([r + [0] * (w - len(r)) for r in enc_])
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = model(input_ids=ids, labels=ids.masked_fill(ids == 0, -100)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 300 == 0:
            model.eval()
            accs = [teacher_greedy_acc(model, tok, problems(k, 50, "mon")) for k in ("add-any", "sub-any")]
            accs += [greedy_acc(model, tok, problems(k, 50, "mon")) for k in ("add-c0", "sub-b0")]
            model.train()
            print(f"  cont step {step + 1} loss {loss.item():.3f}: teacher add {accs[0]:.2f} sub {accs[1]:.2f}; "
                  f"student add-c0 {accs[2]:.2f} sub-b0 {accs[3]:.2f} t={time.perf_counter() - t0:.0f}", flush=True)
    model.eval()
    folder = HERE / dst
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    spec = dict(spec, continued_from=src, cont_steps=steps, cont_lr=lr, cont_seed=seed)
    (folder / "spec.json").write_text(json.dumps(spec, indent=1))
    print(f"continued {src} -> {dst} in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__" and sys.argv[1] == "cont":
    cont(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
