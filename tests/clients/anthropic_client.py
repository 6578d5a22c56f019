#!/usr/bin/env python3
"""Drives strix-run serve's Anthropic-compatible route (/v1/messages) with the
`anthropic` package.

  anthropic_client.py --url URL [--key KEY] messages --requests JSON [--allow-errors]

A request is the keyword arguments of `client.messages.create` as a JSON object (a list
runs several in turn); with "stream": true the raw event stream is read. Sampling
fields this version of the package no longer takes as arguments (temperature, top_p,
top_k) go in the JSON body as they are. Prints one JSON line: a list of normalised
results. An HTTP error fails the program unless --allow-errors, which reports it as
{"ok": false, "status": ..., "body": ...}."""

import inspect
import json
import sys

import anthropic

from common import check, emit, fail, parser, requests_arg


def client(args):
    return anthropic.Anthropic(
        base_url=args.url,
        api_key=args.key or "none",
        max_retries=0,
        timeout=args.timeout,
    )


def split(c, request):
    """Keyword arguments that messages.create takes, and the rest as extra_body."""
    known = set(inspect.signature(c.messages.create).parameters)
    kwargs = {k: v for k, v in request.items() if k in known}
    rest = {k: v for k, v in request.items() if k not in known}
    if rest:
        kwargs["extra_body"] = rest
    return kwargs


def message_one(c, request):
    kwargs = split(c, request)
    if not request.get("stream"):
        m = c.messages.create(**kwargs)
        return {
            "ok": True,
            "stream": False,
            "id": m.id,
            "type": m.type,
            "role": m.role,
            "model": m.model,
            "content_types": [b.type for b in m.content],
            "text": "".join(b.text for b in m.content if b.type == "text"),
            "tool_uses": [{"id": b.id, "name": b.name, "input": b.input} for b in m.content if b.type == "tool_use"],
            "stop_reason": m.stop_reason,
            "stop_sequence": m.stop_sequence,
            "usage": {"input_tokens": m.usage.input_tokens, "output_tokens": m.usage.output_tokens},
        }
    events, text, stop_reason, stop_sequence = [], "", None, None
    input_tokens, output_tokens, message = None, None, None
    block_types = []
    for e in c.messages.create(**kwargs):
        events.append(e.type)
        if e.type == "message_start":
            message = {"id": e.message.id, "type": e.message.type, "role": e.message.role, "model": e.message.model}
            input_tokens = e.message.usage.input_tokens
        elif e.type == "content_block_start":
            block_types.append(e.content_block.type)
        elif e.type == "content_block_delta":
            if e.delta.type == "text_delta":
                text += e.delta.text
        elif e.type == "message_delta":
            stop_reason = e.delta.stop_reason
            stop_sequence = e.delta.stop_sequence
            output_tokens = e.usage.output_tokens
    check(message is not None, f"no message_start event (events: {events})")
    return {
        "ok": True,
        "stream": True,
        "events": events,
        "message": message,
        "block_types": block_types,
        "text": text,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def main():
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("messages")
    s.add_argument("--requests", required=True, help="a JSON object or list (or @FILE)")
    s.add_argument("--allow-errors", action="store_true", help="report HTTP errors as results")
    args = p.parse_args()
    c = client(args)
    results = []
    for request in requests_arg(args.requests):
        try:
            results.append(message_one(c, request))
        except anthropic.APIStatusError as e:
            if not args.allow_errors:
                fail(f"HTTP {e.status_code}: {json.dumps(e.body)}")
            results.append({"ok": False, "status": e.status_code, "body": e.body, "error_class": type(e).__name__})
        except anthropic.APIError as e:
            fail(f"{type(e).__name__}: {e}")
    emit(results)


if __name__ == "__main__":
    sys.exit(main())
