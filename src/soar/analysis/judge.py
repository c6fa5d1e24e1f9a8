"""The LLM-judge taxonomy of synthetic questions (Appendix C.4, Table 7).

Each question and its proposed answer go to a judge with the paper's oracle
prompt (:data:`JUDGE_PROMPT`, verbatim but for the Markdown escapes of the
paper's rendering); the judge reasons in ``<think>`` tags and ends with a JSON
verdict: ``is_well_posed``, ``is_correct``, ``error_type`` (one of
:data:`ERROR_TYPES`) and ``verified_answer``.  :func:`taxonomy` turns verdicts
into Table 7's rows (percent of all samples).

Written by hand rather than with an SDK: the judge is any OpenAI-compatible
``/chat/completions`` endpoint (``judge.base_url``, ``judge.model``; the paper
used Claude-4.5-Sonnet), reached with the standard library, so no client
package is needed; the API key is read from the environment variable named by
``judge.api_key_env`` at the moment of the request and is never written
anywhere (not the config, not the cache, not an error message).  With
``judge.base_url: local`` the judge is a Hugging Face model loaded by soar
(``judge.model``: a hub id, a folder or a GGUF file), decoding greedily.

What the calls do about the failures of a remote service:

* at most ``judge.concurrency`` requests in flight;
* HTTP 429 and 5xx, timeouts and dropped connections are retried up to
  ``judge.retries`` times, waiting ``Retry-After`` when the server sends it,
  else ``judge.backoff_s`` doubled at each attempt;
* a reply without a valid verdict is asked again the same way, and after the
  last attempt counts as *unjudged* (not cached, so a later run asks again);
* other HTTP errors (a wrong key, an unknown model) stop with one line;
* every verdict is appended to a cache as it arrives (JSONL, keyed by a hash
  of the judge model and the full prompt), so a run cut short resumes where it
  was and a question already judged is never sent twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soar.errors import SoarError

JUDGE_PROMPT = """You are evaluating generated math problems for their coherence and solvability. Your task is to determine if the given question is well-formulated, and if the given answer is correct.

**CRITICAL INSTRUCTION:** Do not assume missing information. If the question is nonsensical, lacks a clear problem/question/equation, is syntactically incorrect, is missing necessary information, or is missing variables, you MUST classify it as 'Ambiguous' or 'Ill_Posed'. Do not invent a context to make the answer work.

QUESTION: {question}

PROPOSED_ANSWER: {proposed_answer}

### TAXONOMY OF ERRORS:

- 'None': The question is mathematically complete and the answer is correct.
- 'Arithmetic': The logic is sound, but the final calculation is wrong.
- 'Logical_Fallacy': The steps taken do not follow mathematical rules.
- 'Ill_Posed': The question contains a mathematical impossibility.
- 'Ambiguous': The question is missing necessary data, variables, or context (e.g., "Solve the equation" without providing the equation).

### TASK:

1. Analyze the QUESTION for completeness. If it's a "fragment" or "nonsense," stop and flag it.
2. Solve the problem ONLY if it is well-defined.
3. Determine:
  - is_well_posed: boolean - Is the question mathematically complete and solvable?
  - is_correct: boolean - Is the proposed answer correct? (Only evaluate if is_well_posed is true)
  - error_type: one of ['None', 'Arithmetic', 'Logical_Fallacy', 'Ill_Posed', 'Ambiguous']
  - verified_answer: string - The correct answer if the question is well-posed, or "N/A" if not well-posed

### OUTPUT FORMAT:

First, provide your reasoning in <think> tags.

Then, provide a JSON object with the following exact structure:

```json
{{
  "is_correct": <boolean>,
  "is_well_posed": <boolean>,
  "error_type": "<one of: None, Arithmetic, Logical_Fallacy, Ill_Posed, Ambiguous>",
  "verified_answer": "<string: the correct answer or 'N/A'>"
}}
```

### EXAMPLE OUTPUT:

<think>
The question asks to solve $2x + 5 = 13$. This is well-posed with all necessary information. Solving: $2x = 8$, so $x = 4$. The proposed answer is 4, which is correct.
</think>

```json
{{
  "is_correct": true,
  "is_well_posed": true,
  "error_type": "None",
  "verified_answer": "4"
}}
```"""
"""Appendix C.4's oracle prompt; ``{question}`` and ``{proposed_answer}`` are filled in (``str.format``)."""

ERROR_TYPES = ("None", "Arithmetic", "Logical_Fallacy", "Ill_Posed", "Ambiguous")
ROWS = (("Well-Posed", "well_posed"), ("Correct", "correct"), ("Arithmetic Error", "Arithmetic"),
        ("Logic Error", "Logical_Fallacy"), ("Impossibility Error", "Ill_Posed"), ("Ambiguity Error", "Ambiguous"))
"""Table 7's rows and the verdict counts behind them."""


@dataclass(frozen=True)
class Verdict:
    is_well_posed: bool
    is_correct: bool
    error_type: str
    verified_answer: str


class MalformedVerdict(ValueError):
    """A reply with no usable verdict in it."""


class TransientError(Exception):
    """A failure worth another try (HTTP 429 or 5xx, a timeout, a dropped connection)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def prompt_for(question: str, answer: str) -> str:
    return JUDGE_PROMPT.format(question=question, proposed_answer=answer)


def parse_verdict(text: str) -> Verdict:
    """The verdict in a judge's reply: the last ```json block, else the last JSON object, with the four fields."""
    decoder = json.JSONDecoder()
    values = []
    for block in reversed(re.findall(r"```json\s*(.*?)```", text, flags=re.DOTALL)):
        try:
            values.append(json.loads(block))
        except json.JSONDecodeError:
            continue
    for start in reversed([m.start() for m in re.finditer(r"\{", text)]):
        try:
            values.append(decoder.raw_decode(text[start:])[0])
        except json.JSONDecodeError:
            continue
    for value in values:
        if isinstance(value, dict) and {"is_correct", "is_well_posed", "error_type"} <= value.keys():
            well, correct, error = value["is_well_posed"], value["is_correct"], value["error_type"]
            if isinstance(well, bool) and isinstance(correct, bool) and error in ERROR_TYPES:
                answer = value.get("verified_answer", "N/A")
                return Verdict(well, correct, error, answer if isinstance(answer, str) else json.dumps(answer))
    raise MalformedVerdict(f"no verdict with is_well_posed, is_correct and error_type in {text[:80]!r}")


class ChatEndpoint:
    """An OpenAI-compatible ``POST {base_url}/chat/completions``, greedy, one user message."""

    def __init__(self, base_url: str, model: str, api_key_env: str, timeout_s: float, max_tokens: int) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env, self.timeout_s, self.max_tokens = model, api_key_env, timeout_s, max_tokens

    def complete(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": 0, "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(f"HTTP {exc.code}", _retry_after(exc.headers.get("Retry-After"))) from None
            hint = f" (is ${self.api_key_env} set to a valid key?)" if exc.code in (401, 403) else ""
            raise SoarError(f"judge endpoint {self.url} answered HTTP {exc.code} {exc.reason}{hint}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        try:
            return json.loads(payload)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise MalformedVerdict(f"not a chat completion: {payload[:80]!r}") from None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class LocalJudge:
    """A Hugging Face model loaded by soar as the judge (greedy, its chat template)."""

    def __init__(self, model_name: str, max_tokens: int, model_cfg: Any) -> None:
        from dataclasses import replace

        from soar.engines.generation import HFGenerator
        from soar.engines.models import load_model

        model, self.tokenizer = load_model(replace(model_cfg, name=model_name))
        self.generator = HFGenerator(model, self.tokenizer, batch_size=1)
        self.max_tokens = max_tokens
        self.lock = threading.Lock()  # one model, one caller at a time

    def complete(self, prompt: str) -> str:
        from soar.engines.base import SamplingParams

        text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)
        with self.lock:
            (group,) = self.generator.generate([text], 1, SamplingParams(max_new_tokens=self.max_tokens, greedy=True))
        return group[0].text


class JudgeCache:
    """Verdicts by key in a JSONL file, appended as they arrive; a line torn by a kill is skipped on reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.verdicts: dict[str, Verdict] = {}
        from soar.io import read_jsonl

        for row in read_jsonl(path, repair=True):  # a torn last line (a kill mid-append) is cut, the rest kept
            try:
                self.verdicts[row["key"]] = Verdict(**row["verdict"])
            except (KeyError, TypeError):
                raise SoarError(f"{path}: a cached verdict of another shape ({str(row)[:80]}); "
                                f"delete the file to judge again") from None

    def put(self, key: str, verdict: Verdict) -> None:
        from soar.io import append_jsonl

        with self.lock:
            self.verdicts[key] = verdict
            self.path.parent.mkdir(parents=True, exist_ok=True)
            append_jsonl(self.path, [{"key": key, "verdict": asdict(verdict)}])


def cache_key(model: str, prompt: str) -> str:
    return hashlib.sha256(f"{model}\0{prompt}".encode()).hexdigest()


def judge_all(items: Sequence[tuple[str, str]], complete: Callable[[str], str], model: str, cache: JudgeCache,
              concurrency: int = 4, retries: int = 4, backoff_s: float = 1.0,
              progress: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep
              ) -> list[Verdict | None]:
    """A verdict for each (question, proposed answer), None where the judge gave none after every retry."""
    prompts = [prompt_for(q, a) for q, a in items]
    keys = [cache_key(model, p) for p in prompts]

    def one(index: int) -> Verdict | None:
        cached = cache.verdicts.get(keys[index])
        if cached is not None:
            return cached
        for attempt in range(retries + 1):
            wait = backoff_s * 2 ** attempt
            try:
                verdict = parse_verdict(complete(prompts[index]))
            except TransientError as exc:
                wait = exc.retry_after if exc.retry_after is not None else wait
            except MalformedVerdict:
                pass
            else:
                cache.put(keys[index], verdict)
                return verdict
            if attempt < retries:
                sleep(wait)
        return None

    def tracked(index: int) -> Verdict | None:
        try:
            return one(index)
        finally:
            if progress is not None:
                progress()

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(tracked, range(len(items))))


def taxonomy(verdicts: Sequence[Verdict | None]) -> dict[str, Any]:
    """Table 7's rows as percent of all samples, with the counts: ``well_posed``, ``correct``, one per error type,
    ``total`` and ``unjudged`` (no verdict: counted in the total, in no row)."""
    judged = [v for v in verdicts if v is not None]
    counts = {"well_posed": sum(v.is_well_posed for v in judged),
              "correct": sum(v.is_well_posed and v.is_correct for v in judged)}
    counts.update({e: sum(v.error_type == e for v in judged) for e in ERROR_TYPES})
    total = len(verdicts)
    return {"counts": counts, "percent": {k: 100.0 * c / total if total else 0.0 for k, c in counts.items()},
            "total": total, "unjudged": total - len(judged)}
