"""The judge taxonomy (Appendix C.4) against a real OpenAI-compatible HTTP server on loopback.

The server answers by question: a canned verdict, a malformed reply first, a 429 first, a reply slower than the
client's timeout first, or never a verdict.  It records every request (the key it was sent, how many were in
flight at once), so the tests check retries, bounded concurrency, the cache and resuming, and that the API key
travels only in the request header.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soar.analysis.judge import (
    JUDGE_PROMPT,
    ChatEndpoint,
    JudgeCache,
    MalformedVerdict,
    Verdict,
    judge_all,
    parse_verdict,
    taxonomy,
)

KEY = "sk-test-0123456789"

GOOD = {"is_correct": True, "is_well_posed": True, "error_type": "None", "verified_answer": "4"}
ARITH = {"is_correct": False, "is_well_posed": True, "error_type": "Arithmetic", "verified_answer": "5"}
AMBIG = {"is_correct": False, "is_well_posed": False, "error_type": "Ambiguous", "verified_answer": "N/A"}


def _reply(verdict):
    return f"<think>\nchecking\n</think>\n\n```json\n{json.dumps(verdict, indent=2)}\n```"


class Judge(BaseHTTPRequestHandler):
    state: dict = {}

    def log_message(self, *args):
        pass

    def do_POST(self):
        s = self.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        question = prompt.split("QUESTION: ", 1)[1].split("\n", 1)[0]
        with s["lock"]:
            s["requests"].append((question, self.headers.get("Authorization"), body["model"]))
            s["in_flight"] += 1
            s["max_in_flight"] = max(s["max_in_flight"], s["in_flight"])
            seen = sum(1 for q, _, _ in s["requests"] if q == question)
        try:
            if self.headers.get("Authorization") != f"Bearer {KEY}":
                return self._send(401, {"error": "invalid api key"})
            time.sleep(0.05)  # long enough for concurrent requests to overlap
            if question.startswith("rate-limited") and seen == 1:
                return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
            if question.startswith("slow") and seen == 1:
                time.sleep(1.0)  # past the client's 0.5 s timeout
            if question.startswith("garbled") and seen == 1:
                return self._send(200, {"choices": [{"message": {"content": "I think it is fine."}}]})
            if question.startswith("broken"):
                return self._send(200, {"choices": [{"message": {"content": "{not json"}}]})
            if question.startswith("server-error") and seen == 1:
                return self._send(503, {"error": "overloaded"})
            verdict = {"arith": ARITH, "vague": AMBIG}.get(question.split()[0], GOOD)
            return self._send(200, {"choices": [{"message": {"role": "assistant", "content": _reply(verdict)}}]})
        finally:
            with s["lock"]:
                s["in_flight"] -= 1

    def _send(self, code, payload, headers=None):
        data = json.dumps(payload).encode()
        try:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass


@pytest.fixture
def server():
    Judge.state = {"lock": threading.Lock(), "requests": [], "in_flight": 0, "max_in_flight": 0}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Judge)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", Judge.state
    httpd.shutdown()
    httpd.server_close()


ITEMS = [("ok 1", "4"), ("ok 2", "4"), ("arith 1", "6"), ("vague 1", "x"), ("rate-limited 1", "4"),
         ("slow 1", "4"), ("garbled 1", "4"), ("server-error 1", "4"), ("broken 1", "4")]


def test_verdicts_retries_concurrency_and_the_cache(server, tmp_path, monkeypatch):
    url, state = server
    monkeypatch.setenv("JUDGE_KEY", KEY)
    endpoint = ChatEndpoint(url, "judge-model", "JUDGE_KEY", timeout_s=0.5, max_tokens=256)
    cache = JudgeCache(tmp_path / "cache.jsonl")
    waits = []
    verdicts = judge_all(ITEMS, endpoint.complete, "judge-model", cache, concurrency=3, retries=2, backoff_s=0.01,
                         sleep=lambda s: (waits.append(s), time.sleep(s)))
    assert verdicts[:2] == [Verdict(True, True, "None", "4")] * 2
    assert verdicts[2] == Verdict(True, False, "Arithmetic", "5") and verdicts[3].error_type == "Ambiguous"
    assert all(v == Verdict(True, True, "None", "4") for v in verdicts[4:8])  # each recovered on its retry
    assert verdicts[8] is None  # never a verdict: unjudged after 1 + 2 attempts
    asked = [q for q, _, _ in state["requests"]]
    assert asked.count("broken 1") == 3 and asked.count("rate-limited 1") == 2 and asked.count("slow 1") == 2
    assert 0.0 in waits  # Retry-After: 0 was honoured
    assert 1 < state["max_in_flight"] <= 3
    assert {auth for _, auth, _ in state["requests"]} == {f"Bearer {KEY}"}
    assert KEY not in (tmp_path / "cache.jsonl").read_text()
    table = taxonomy(verdicts)
    assert table["total"] == 9 and table["unjudged"] == 1
    assert table["counts"] == {"well_posed": 7, "correct": 6, "None": 6, "Arithmetic": 1, "Logical_Fallacy": 0,
                               "Ill_Posed": 0, "Ambiguous": 1}
    assert table["percent"]["well_posed"] == pytest.approx(700 / 9)
    # resumed: a new cache object over the same file sends only what has no verdict yet
    before = len(state["requests"])
    again = judge_all(ITEMS, endpoint.complete, "judge-model", JudgeCache(tmp_path / "cache.jsonl"), concurrency=3,
                      retries=0, backoff_s=0.0)
    assert again[:8] == verdicts[:8] and [q for q, _, _ in state["requests"][before:]] == ["broken 1"]


def test_a_wrong_key_stops_in_one_line_without_showing_it(server, monkeypatch):
    from soar.errors import SoarError

    url, state = server
    monkeypatch.setenv("JUDGE_KEY", "sk-wrong-key")
    endpoint = ChatEndpoint(url, "m", "JUDGE_KEY", timeout_s=2, max_tokens=8)
    with pytest.raises(SoarError) as caught:  # 401: not worth retrying
        judge_all([("ok", "4")], endpoint.complete, "m", JudgeCache(Path("/nonexistent/never-written.jsonl")))
    message = str(caught.value)
    assert "HTTP 401" in message and "$JUDGE_KEY" in message and "sk-wrong-key" not in message and "\n" not in message
    assert len(state["requests"]) == 1


def test_verdict_parsing_takes_the_last_valid_object():
    assert parse_verdict(_reply(GOOD)) == Verdict(True, True, "None", "4")
    two = _reply(AMBIG) + "\nOn reflection:\n" + _reply(ARITH)
    assert parse_verdict(two).error_type == "Arithmetic"
    bare = 'Reasoning {with braces}. {"is_correct": false, "is_well_posed": true, "error_type": "Ill_Posed", ' \
           '"verified_answer": 7}'
    assert parse_verdict(bare) == Verdict(True, False, "Ill_Posed", "7")
    for bad in ("no json", '{"is_correct": "yes", "is_well_posed": true, "error_type": "None"}',
                '{"is_correct": true, "is_well_posed": true, "error_type": "Typo"}'):
        with pytest.raises(MalformedVerdict):
            parse_verdict(bad)
    assert "{question}" in JUDGE_PROMPT and "'Ill_Posed'" in JUDGE_PROMPT and "\\_" not in JUDGE_PROMPT


def test_soar_analyze_judge_prints_the_table(server, tmp_path, monkeypatch):
    from soar.cli import app

    url, state = server
    monkeypatch.setenv("JUDGE_KEY", KEY)
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in ITEMS[:4]))
    args = ["analyze", "judge", str(questions), "--cache", str(tmp_path / "c.jsonl"), "--judge.base_url", url,
            "--judge.model", "judge-model", "--judge.api_key_env", "JUDGE_KEY", "--judge.backoff_s", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = {line.split("  ")[0].strip(): line.split()[-1] for line in result.output.splitlines() if "  " in line}
    assert lines["Well-Posed"] == "75.0%" and lines["Correct"] == "50.0%" and lines["Ambiguity Error"] == "25.0%"
    assert lines["Total Samples"] == "4" and KEY not in result.output
    missing = CliRunner().invoke(app, ["analyze", "judge", str(questions)])
    assert missing.exit_code != 0 and "--judge.base_url" in str(missing.exception)  # main() prints it in one line


def test_a_local_model_can_judge(tmp_path):
    """judge.base_url local: a model loaded by soar answers the same prompt (a random tiny one writes no verdict,
    so every question is unjudged, asked 1 + retries times, and nothing is cached)."""
    from soar.analysis.judge import LocalJudge
    from soar.config import ModelConfig
    from soar.engines.tiny import default_tokenizer, tiny_model

    tokenizer = default_tokenizer()
    tiny_model(tokenizer).save_pretrained(tmp_path / "judge")
    tokenizer.save_pretrained(tmp_path / "judge")
    judge = LocalJudge(str(tmp_path / "judge"), 16, ModelConfig(device="cpu", cache_dir=str(tmp_path / "cache")))
    replies = []
    complete = lambda prompt: replies.append(judge.complete(prompt)) or replies[-1]  # noqa: E731
    cache = JudgeCache(tmp_path / "verdicts.jsonl")
    verdicts = judge_all(ITEMS[:2], complete, "local-tiny", cache, concurrency=2, retries=1, backoff_s=0.0)
    assert verdicts == [None, None] and len(replies) == 4 and all(isinstance(r, str) for r in replies)
    assert taxonomy(verdicts)["unjudged"] == 2 and not (tmp_path / "verdicts.jsonl").exists()
