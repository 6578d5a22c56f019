#!/usr/bin/env python3
"""Drives strix-run serve's OpenAI-compatible routes with the `openai` package.

  openai_client.py --url URL [--key KEY] models
  openai_client.py --url URL chat --requests JSON [--concurrent] [--allow-errors] [--announce]
  openai_client.py --url URL complete --requests JSON [--concurrent] [--allow-errors]
  openai_client.py --url URL cancel --request JSON [--chunks N]
  openai_client.py --url URL tools --model ID

A request is the keyword arguments of `client.chat.completions.create` (or
`client.completions.create`) as a JSON object; a list runs several, one after another
or, with --concurrent, all at once. Prints one JSON line: a list of results, one per
request, normalised (text, finish_reason, usage, ...). A failed request (an HTTP error
status) fails the program unless --allow-errors, which reports it as
{"ok": false, "status": ..., "body": ..., "retry_after": ...} instead."""

import json
import sys

import openai

from common import check, emit, fail, json_arg, parser, requests_arg, run_all


def client(args):
    # No retries: a retried 503 or a retried dropped connection would hide what the
    # server did.
    return openai.OpenAI(
        base_url=args.url + "/v1",
        api_key=args.key or "none",
        max_retries=0,
        timeout=args.timeout,
    )


def api_error(e):
    retry_after = e.response.headers.get("retry-after") if e.response is not None else None
    return {
        "ok": False,
        "status": e.status_code,
        "body": e.body,
        "retry_after": retry_after,
        "error_class": type(e).__name__,
    }


def tool_calls(calls):
    return [
        {"id": c.id, "type": c.type, "name": c.function.name, "arguments": c.function.arguments}
        for c in calls or []
    ]


def usage(u):
    return None if u is None else u.model_dump()


def extra(model, name):
    return (model.model_extra or {}).get(name)


# llama.cpp's extensions of OpenAI's requests, which the openai package sends only as
# extra_body.
EXTENSIONS = ("cache_prompt", "top_k", "min_p", "repeat_penalty")


def with_extensions(request):
    """The request with llama.cpp's extension fields moved into extra_body."""
    request = dict(request)
    extra = {k: request.pop(k) for k in EXTENSIONS if k in request}
    if extra:
        request["extra_body"] = extra
    return request


def chat_one(c, request, announce=False):
    request = with_extensions(request)
    if not request.get("stream"):
        r = c.chat.completions.create(**request)
        check(r.object == "chat.completion", f"object is {r.object!r}, not 'chat.completion'")
        check(len(r.choices) == 1, f"{len(r.choices)} choices, not 1")
        choice = r.choices[0]
        return {
            "ok": True,
            "stream": False,
            "id": r.id,
            "object": r.object,
            "model": r.model,
            "created": r.created,
            "index": choice.index,
            "role": choice.message.role,
            "text": choice.message.content,
            "finish_reason": choice.finish_reason,
            "tool_calls": tool_calls(choice.message.tool_calls),
            "usage": usage(r.usage),
            "timings": extra(r, "timings"),
        }
    stream = c.chat.completions.create(**request)
    text, finish, chunks, content_chunks = "", None, 0, 0
    objects, ids, roles = set(), set(), []
    usage_seen, usage_choices = None, None
    calls = {}
    timings = None
    announced = False
    for chunk in stream:
        chunks += 1
        objects.add(chunk.object)
        ids.add(chunk.id)
        if extra(chunk, "timings") is not None:
            timings = extra(chunk, "timings")
        if chunk.usage is not None:
            usage_seen, usage_choices = usage(chunk.usage), len(chunk.choices)
        for choice in chunk.choices:
            d = choice.delta
            if d.role:
                roles.append(d.role)
            if d.content:
                text += d.content
                content_chunks += 1
                if announce and not announced:
                    emit({"event": "first_chunk"})
                    announced = True
            for tc in d.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "type": None, "name": "", "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                slot["type"] = tc.type or slot["type"]
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["arguments"] += tc.function.arguments or ""
            if choice.finish_reason is not None:
                check(finish is None, f"a second finish_reason {choice.finish_reason!r} after {finish!r}")
                finish = choice.finish_reason
    return {
        "ok": True,
        "stream": True,
        "text": text,
        "finish_reason": finish,
        "chunks": chunks,
        "content_chunks": content_chunks,
        "objects": sorted(o for o in objects if o),
        "ids": len(ids),
        "roles": roles,
        "usage": usage_seen,
        "usage_chunk_choices": usage_choices,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "timings": timings,
    }


def complete_one(c, request):
    request = with_extensions(request)
    if not request.get("stream"):
        r = c.completions.create(**request)
        check(r.object == "text_completion", f"object is {r.object!r}, not 'text_completion'")
        check(len(r.choices) == 1, f"{len(r.choices)} choices, not 1")
        return {
            "ok": True,
            "stream": False,
            "id": r.id,
            "object": r.object,
            "model": r.model,
            "text": r.choices[0].text,
            "finish_reason": r.choices[0].finish_reason,
            "usage": usage(r.usage),
            "timings": extra(r, "timings"),
        }
    text, finish, chunks, usage_seen = "", None, 0, None
    for chunk in c.completions.create(**request):
        chunks += 1
        if chunk.usage is not None:
            usage_seen = usage(chunk.usage)
        for choice in chunk.choices:
            text += choice.text or ""
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    return {"ok": True, "stream": True, "text": text, "finish_reason": finish, "chunks": chunks, "usage": usage_seen}


def guarded(fn, allow_errors):
    def run(request):
        try:
            return fn(request)
        except openai.APIStatusError as e:
            if allow_errors:
                return api_error(e)
            fail(f"HTTP {e.status_code}: {json.dumps(e.body)}")

    return run


def cmd_models(args):
    models = client(args).models.list()
    emit([m.model_dump() for m in models.data])


def cmd_chat(args):
    c = client(args)
    run = guarded(lambda r: chat_one(c, r, args.announce), args.allow_errors)
    emit(run_all(run, requests_arg(args.requests), args.concurrent))


def cmd_complete(args):
    c = client(args)
    run = guarded(lambda r: complete_one(c, r), args.allow_errors)
    emit(run_all(run, requests_arg(args.requests), args.concurrent))


def cmd_cancel(args):
    """Reads a few chunks of a stream, then closes the connection mid-answer."""
    c = client(args)
    request = dict(json_arg(args.request), stream=True)
    stream = c.chat.completions.create(**request)
    read, text, finish = 0, "", None
    for chunk in stream:
        read += 1
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        if read >= args.chunks:
            break
    check(finish is None, f"the stream finished ({finish!r}) within {read} chunks: ask for a longer answer")
    stream.close()
    c.close()
    emit({"chunks_read": read, "text": text})


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name"}},
            "required": ["city"],
        },
    },
}


def cmd_tools(args):
    """A tool-call round trip: the model must call get_weather (tool_choice required),
    the tool's result goes back as a `tool` message, and a final answer follows."""
    c = client(args)
    # Gemma 3 270M is a small base model that has never seen this template: llama.cpp's
    # grammar for `required` lets the answer begin with free text and then requires a
    # call, so a model that never starts one writes text until max_tokens. Two earlier
    # turns that called the tool give it the pattern; the grammar still decides the
    # call's shape (name, JSON arguments matching the schema).
    messages = []
    for n, (city, sky) in enumerate([("Berlin", "cloudy"), ("Rome", "sunny")]):
        messages += [
            {"role": "user", "content": f"What is the weather in {city} right now?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": f"call_{n}", "type": "function",
                 "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]},
            {"role": "tool", "tool_call_id": f"call_{n}",
             "content": json.dumps({"city": city, "temperature_c": 15, "sky": sky})},
            {"role": "assistant", "content": f"It is 15 degrees and {sky} in {city}."},
        ]
    messages.append({"role": "user", "content": "What is the weather in Paris right now?"})
    first = c.chat.completions.create(
        model=args.model,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0,
        max_tokens=args.max_tokens,
    )
    msg = first.choices[0].message
    calls = tool_calls(msg.tool_calls)
    check(
        calls,
        f"no tool_calls in the answer (finish_reason {first.choices[0].finish_reason!r}, "
        f"prompt_tokens {first.usage.prompt_tokens if first.usage else None}, content {msg.content!r})",
    )
    arguments = {}
    try:
        arguments = json.loads(calls[0]["arguments"])
    except ValueError as e:
        fail(f"the tool call's arguments are not JSON ({e}): {calls[0]['arguments']!r}")
    messages.append(
        {
            "role": "assistant",
            "content": msg.content,
            "tool_calls": [
                {"id": t["id"], "type": "function", "function": {"name": t["name"], "arguments": t["arguments"]}}
                for t in calls
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": json.dumps({"city": arguments.get("city"), "temperature_c": 18, "sky": "sunny"})})
    second = c.chat.completions.create(
        model=args.model, messages=messages, tools=[WEATHER_TOOL], temperature=0, max_tokens=args.max_tokens
    )
    emit(
        {
            "first": {"finish_reason": first.choices[0].finish_reason, "tool_calls": calls, "arguments": arguments, "content": msg.content},
            "second": {
                "finish_reason": second.choices[0].finish_reason,
                "text": second.choices[0].message.content,
                "tool_calls": tool_calls(second.choices[0].message.tool_calls),
                "usage": usage(second.usage),
            },
        }
    )


def main():
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models")
    for name in ("chat", "complete"):
        s = sub.add_parser(name)
        s.add_argument("--requests", required=True, help="a JSON object or list (or @FILE)")
        s.add_argument("--concurrent", action="store_true", help="send all requests at once")
        s.add_argument("--allow-errors", action="store_true", help="report HTTP errors as results")
        if name == "chat":
            s.add_argument("--announce", action="store_true", help='print {"event": "first_chunk"} when a stream\'s first text arrives')
    s = sub.add_parser("cancel")
    s.add_argument("--request", required=True)
    s.add_argument("--chunks", type=int, default=3)
    s = sub.add_parser("tools")
    s.add_argument("--model", required=True)
    s.add_argument("--max-tokens", type=int, default=48)
    args = p.parse_args()
    try:
        {"models": cmd_models, "chat": cmd_chat, "complete": cmd_complete, "cancel": cmd_cancel, "tools": cmd_tools}[args.command](args)
    except openai.APIStatusError as e:
        fail(f"HTTP {e.status_code}: {json.dumps(e.body)}")
    except openai.APIError as e:
        fail(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    sys.exit(main())
