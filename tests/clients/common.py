"""What the client programs share: their common arguments, JSON on standard output,
and failing with a message (exit 1) on standard error.

The programs drive `strix-run serve` with real clients nobody in this project wrote
(the `openai` and `anthropic` packages from PyPI, installed by scripts/setup into
target/clients-venv); tests/serve.rs runs them and checks what they print."""

import argparse
import json
import sys
import threading


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    p.add_argument("--key", default=None, help="API key to send (default: none)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    return p


def json_arg(text):
    """A JSON value given on the command line, or @PATH for one in a file."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            return json.load(f)
    return json.loads(text)


def requests_arg(text):
    """One request (a JSON object) or several (a JSON list of objects)."""
    value = json_arg(text)
    return value if isinstance(value, list) else [value]


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def fail(message):
    sys.stderr.write(f"{sys.argv[0]}: {message}\n")
    sys.stderr.flush()
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def run_all(fn, items, concurrent):
    """fn over items, one after another, or all at once on threads that start together
    (a barrier): results in the order of items. An exception in fn fails the program."""
    if not concurrent:
        return [fn(item) for item in items]
    results = [None] * len(items)
    errors = []
    barrier = threading.Barrier(len(items))

    def work(i, item):
        try:
            barrier.wait(timeout=60)
            results[i] = fn(item)
        except BaseException as e:  # reported below, with the request that raised it
            errors.append(f"request {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(i, item)) for i, item in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail("; ".join(errors))
    return results
