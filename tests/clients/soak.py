#!/usr/bin/env python3
"""A bounded soak of strix-run serve with Python's own http.client: a seeded random mix
of short chat, completion and Anthropic requests, streams dropped part-way, malformed
bodies and prompts longer than a slot's context, from a few threads at once, until
--requests are done or --seconds have passed. Each answer's status is checked
(200 for the good requests, 400 for the bad ones).

  soak.py --url URL --model ID [--requests 200] [--seconds 60] [--workers 4]

Prints one JSON line: {"done", "by_kind", "statuses", "unexpected", "elapsed"}; exits 1
when any answer was unexpected (the first ones are in "unexpected")."""

import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

from common import emit, parser

PROMPTS = [
    "Say hello.",
    "Name a colour.",
    "What is 2 + 2?",
    "Write one word about the sea.",
    "Give me a fruit.",
    "Describe the moon in three words.",
]

MALFORMED = [
    b'{"model": "m", "messages": [{"role": "user", "content": "hi"}',
    b"not json at all",
    b'{"messages": "this should be a list", "max_tokens": 4}',
    b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "four"}',
    b"[1, 2, 3]",
    b"",
]


class Soak:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.url)
        self.host, self.port = u.hostname, u.port
        self.args = args
        self.lock = threading.Lock()
        self.next = 0
        self.done = 0
        self.by_kind = {}
        self.statuses = {}
        self.unexpected = []
        self.deadline = time.monotonic() + args.seconds

    def take(self):
        with self.lock:
            if self.next >= self.args.requests or time.monotonic() >= self.deadline:
                return None
            self.next += 1
            return self.next

    def record(self, kind, status, problem=None):
        with self.lock:
            self.done += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            key = f"{kind} {status}"
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if problem is not None and len(self.unexpected) < 20:
                self.unexpected.append({"kind": kind, "status": status, "problem": problem})

    def post(self, path, body, read=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.timeout)
        headers = {"Content-Type": "application/json"}
        if self.args.key:
            headers["Authorization"] = f"Bearer {self.args.key}"
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        if not read:
            return conn, resp
        data = resp.read()
        conn.close()
        return resp.status, data

    def expect(self, kind, path, payload, status_wanted, check=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        status, data = self.post(path, body)
        problem = None
        if status != status_wanted:
            problem = f"status {status}, wanted {status_wanted}: {data[:300]!r}"
        else:
            try:
                doc = json.loads(data)
                if check is not None:
                    problem = check(doc)
            except ValueError as e:
                problem = f"body is not JSON ({e}): {data[:300]!r}"
        self.record(kind, status, problem)

    def one(self, rng):
        m = self.args.model
        kind = rng.choices(
            ["chat", "complete", "anthropic", "drop", "malformed", "overlong"],
            weights=[30, 15, 10, 20, 15, 10],
        )[0]
        prompt = rng.choice(PROMPTS)
        temperature = rng.choice([0, 0.8])
        if kind == "chat":
            self.expect(
                kind,
                "/v1/chat/completions",
                {"model": m, "messages": [{"role": "user", "content": prompt}], "max_tokens": rng.randint(1, 6), "temperature": temperature},
                200,
                lambda d: None if d.get("choices") else f"no choices: {d}",
            )
        elif kind == "complete":
            self.expect(
                kind,
                "/v1/completions",
                {"model": m, "prompt": prompt, "max_tokens": rng.randint(1, 6), "temperature": temperature},
                200,
                lambda d: None if d.get("choices") else f"no choices: {d}",
            )
        elif kind == "anthropic":
            self.expect(
                kind,
                "/v1/messages",
                {"model": m, "max_tokens": rng.randint(1, 6), "messages": [{"role": "user", "content": prompt}]},
                200,
                lambda d: None if d.get("type") == "message" else f"not a message: {d}",
            )
        elif kind == "drop":
            body = json.dumps(
                {"model": m, "messages": [{"role": "user", "content": "Tell me a long story about " + prompt}], "max_tokens": 300, "stream": True}
            ).encode()
            conn, resp = self.post("/v1/chat/completions", body, read=False)
            problem = None
            if resp.status != 200:
                problem = f"status {resp.status}: {resp.read()[:300]!r}"
            else:
                want = rng.randint(1, 3)
                seen = 0
                while seen < want:
                    line = resp.readline()
                    if not line:
                        break
                    if line.startswith(b"data: "):
                        seen += 1
            # Hang up mid-answer: the socket closes under the unread rest.
            conn.sock and conn.sock.close()
            conn.close()
            self.record(kind, resp.status, problem)
        elif kind == "malformed":
            self.expect(
                kind,
                "/v1/chat/completions",
                rng.choice(MALFORMED),
                400,
                lambda d: None if isinstance(d.get("error"), dict) and d["error"].get("message") else f"no error.message: {d}",
            )
        else:
            words = " ".join(rng.choice(["apple", "river", "stone", "cloud"]) for _ in range(self.args.overlong_words))
            self.expect(
                kind,
                "/v1/chat/completions",
                {"model": m, "messages": [{"role": "user", "content": words}], "max_tokens": 4},
                400,
                lambda d: None if isinstance(d.get("error"), dict) else f"no error object: {d}",
            )

    def worker(self, seed):
        rng = random.Random(seed)
        while self.take() is not None:
            try:
                self.one(rng)
            except Exception as e:  # a reset, a timeout: the server misbehaved
                self.record("exception", 0, f"{type(e).__name__}: {e}")


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--overlong-words", type=int, default=800, help="words in a too-long prompt")
    args = p.parse_args()
    soak = Soak(args)
    start = time.monotonic()
    threads = [threading.Thread(target=soak.worker, args=(args.seed * 1000 + i,)) for i in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emit(
        {
            "done": soak.done,
            "by_kind": soak.by_kind,
            "statuses": soak.statuses,
            "unexpected": soak.unexpected,
            "elapsed": round(time.monotonic() - start, 2),
        }
    )
    if soak.unexpected:
        sys.stderr.write(f"soak.py: {len(soak.unexpected)} unexpected answers (listed in the JSON)\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
