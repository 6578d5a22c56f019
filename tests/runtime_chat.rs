//! llama.cpp's chat layer (`runtime::chat`) and its `common_sampler`
//! (`runtime::sampler`) on the real Gemma 3 270M, on the CPU.
//!
//! The Gemma GGUF carries no chat template, so the template tests give a copy of it one
//! (`tokenizer.chat_template`, as `runtime_generate::model_chat_template_is_used` does):
//! Gemma 3's own Jinja template, and Qwen 2.5's (Hermes-style `<tool_call>` JSON) for
//! tool calling. Expected prompts are the formats those templates write, by hand.

use crate::support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use strix_run::planner::{Pinned, Request};
use strix_run::runtime::chat::{
    json_schema_to_grammar, parse_reply, ChatError, ChatParams, ChatRequest, ChatTemplates,
    GrammarKind, ParsedReply, ReplyParser,
};
use strix_run::runtime::load::{plan_and_load, LoadOptions};
use strix_run::runtime::sampler::{CommonSampler, SamplerError, SamplerSpec};
use strix_run::runtime::session::{SamplingOptions, Session};

/// Gemma 3's chat template as published with the instruction-tuned models
/// (`tokenizer_config.json` of google/gemma-3-*-it).
const GEMMA3_JINJA: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"#;

/// Qwen 2.5 Instruct's chat template (Hermes-style tool calls: JSON in `<tool_call>`).
use crate::support::server::HERMES_TOOLS_JINJA as QWEN25_JINJA;

/// A copy of Gemma in `dir` with `jinja` as its `tokenizer.chat_template`.
fn gemma_with_template(dir: &Path, jinja: &str) -> PathBuf {
    crate::support::server::gemma_with_template(dir, "gemma-3-270m-template.gguf", jinja)
}

/// A session over the model at `path` (small context, 2 threads).
fn session_of(path: &Path) -> Session {
    let request = Request {
        n_ctx: Some(1024),
        pinned: Pinned {
            threads: Some(2),
            ..Pinned::default()
        },
        ..Request::default()
    };
    let mut opts = LoadOptions::new(request, support::detected_hardware());
    opts.progress = false;
    Session::new(plan_and_load(path, &opts).expect("model loads"))
}

fn system_and_user() -> Value {
    json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello."}
    ])
}

fn request(messages: Value) -> ChatRequest {
    ChatRequest {
        messages,
        add_generation_prompt: true,
        ..ChatRequest::default()
    }
}

/// Greedy-or-not generation with `sampler` after `prompt` (BOS added, special tokens
/// parsed), from an empty cache, until an end-of-generation token or `max` tokens: the
/// text, preserved tokens rendered as text (as llama-server renders them).
fn generate(
    session: &Session,
    sampler: &mut CommonSampler,
    prompt: &str,
    max: usize,
) -> (String, bool) {
    use llama_cpp_sys_2 as sys;
    let context = session.loaded().context();
    let ctx = context.as_ptr();
    let mut tokens = session.tokenize(prompt, true, true).expect("tokenize");
    assert!(tokens.len() < context.n_batch() as usize);
    // SAFETY: live context; the batch points into `tokens`, alive for the call.
    unsafe {
        sys::llama_memory_clear(sys::llama_get_memory(ctx), true);
        let rc = sys::llama_decode(
            ctx,
            sys::llama_batch_get_one(tokens.as_mut_ptr(), tokens.len() as i32),
        );
        assert_eq!(rc, 0, "prompt decode");
    }
    sampler
        .accept_prompt(&tokens)
        .expect("prompt into the sampler");
    let mut bytes = Vec::new();
    for _ in 0..max {
        let token = sampler.try_sample(context, -1).expect("sample");
        if session.is_end_of_generation(token) {
            return (String::from_utf8_lossy(&bytes).into_owned(), true);
        }
        bytes.extend(session.token_bytes(token, sampler.is_preserved(token)));
        let mut one = [token];
        // SAFETY: as above.
        let rc = unsafe { sys::llama_decode(ctx, sys::llama_batch_get_one(one.as_mut_ptr(), 1)) };
        assert_eq!(rc, 0, "token decode");
    }
    (String::from_utf8_lossy(&bytes).into_owned(), false)
}

/// (1) Gemma 3's Jinja template, from the model's own metadata: the prompt is Gemma's
/// turn format; the built-in `gemma` template (no Jinja) writes the same; a conversation
/// the template refuses, and malformed messages, are errors.
#[test]
fn gemma_template_formats_a_conversation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = session_of(&gemma_with_template(dir.path(), GEMMA3_JINJA));
    let model = session.loaded().model();
    let templates = ChatTemplates::new(model).expect("templates");
    let info = templates.info().expect("info");
    // llama.cpp's Jinja lexer drops the template's one trailing newline, as Jinja does.
    assert_eq!(Some(info.source.as_str()), GEMMA3_JINJA.strip_suffix('\n'));
    assert!(info.explicit && info.use_jinja);
    assert_eq!(info.tool_use_source, "");

    let params = templates.apply(&request(system_and_user())).expect("apply");
    eprintln!("gemma params: {params:#?}");
    // Gemma's template writes <bos> first; llama.cpp drops it since the model adds BOS
    // when the prompt is tokenized. The system text leads the first user turn.
    const EXPECTED: &str =
        "<start_of_turn>user\nBe brief.\n\nSay hello.<end_of_turn>\n<start_of_turn>model\n";
    assert_eq!(params.prompt, EXPECTED);
    assert!(params.prompt.contains("<start_of_turn>user"));
    assert!(params.prompt.ends_with("<start_of_turn>model\n"));
    assert_eq!(params.generation_prompt, "<start_of_turn>model\n");
    assert_eq!(params.grammar, "");
    assert!(params.grammar_triggers.is_empty());

    // Without the generation prompt the conversation ends with the user's turn.
    let closed = templates
        .apply(&ChatRequest {
            add_generation_prompt: false,
            ..request(system_and_user())
        })
        .expect("apply");
    assert_eq!(
        closed.prompt,
        "<start_of_turn>user\nBe brief.\n\nSay hello.<end_of_turn>\n"
    );

    // Content as text parts, and an earlier assistant turn ("model").
    let parts = templates
        .apply(&request(json!([
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"}
        ])))
        .expect("apply");
    assert_eq!(
        parts.prompt,
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
         <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    );

    // The same Jinja given as an override, and llama.cpp's built-in `gemma` template.
    let overridden = ChatTemplates::with_template(model, GEMMA3_JINJA).expect("override");
    assert_eq!(
        overridden
            .apply(&request(system_and_user()))
            .expect("apply")
            .prompt,
        EXPECTED
    );
    let builtin = ChatTemplates::with_template(model, "gemma").expect("built-in");
    assert!(!builtin.info().expect("info").use_jinja);
    let b = builtin.apply(&request(system_and_user())).expect("apply");
    assert_eq!(b.prompt, EXPECTED);
    assert_eq!(b.format, 0, "no Jinja: content only");

    // Refused by the template (two user turns in a row): an error, not a crash.
    let err = templates
        .apply(&request(json!([
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"}
        ])))
        .expect_err("roles must alternate");
    assert!(matches!(err, ChatError::Template(_)));
    assert!(err.to_string().contains("alternate"), "{err}");
    // Malformed requests.
    for bad in [
        json!([{"content": "no role"}]),
        json!("not an array"),
        json!([{"role": "user", "content": 5}]),
        json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
    ] {
        let r = templates.apply(&request(bad.clone()));
        assert!(matches!(r, Err(ChatError::Template(_))), "{bad}: {r:?}");
    }
    let r = templates.apply(&ChatRequest {
        tool_choice: Some("sometimes".into()),
        ..request(system_and_user())
    });
    assert!(matches!(r, Err(ChatError::Template(_))), "{r:?}");
    assert!(ChatTemplates::with_template(model, "{% if %}").is_err());
    assert!(matches!(
        ChatTemplates::with_template(model, "a\0b"),
        Err(ChatError::Nul(_))
    ));
}

/// (2) JSON schemas: through the template they become the sampler's grammar; directly,
/// a GBNF grammar with a `root` rule; a schema llama.cpp cannot read is an error. The
/// plain Gemma GGUF has no template: llama.cpp falls back to ChatML, as llama-server.
#[test]
fn json_schema_gives_grammars() {
    let session = support::gemma_session();
    let model = session.loaded().model();
    let templates = ChatTemplates::new(model).expect("templates");
    let info = templates.info().expect("info");
    assert!(!info.explicit, "no template in the GGUF: ChatML fallback");
    let plain = templates.apply(&request(system_and_user())).expect("apply");
    assert_eq!(
        plain.prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n"
    );

    let schema =
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
    let with_schema = templates
        .apply(&ChatRequest {
            json_schema: Some(schema.clone()),
            ..request(system_and_user())
        })
        .expect("apply");
    eprintln!("schema params: {with_schema:#?}");
    assert!(!with_schema.grammar.is_empty());
    assert_eq!(with_schema.grammar_kind, GrammarKind::Template);
    assert!(!with_schema.grammar_lazy);
    assert_eq!(
        with_schema.prompt, plain.prompt,
        "the schema does not change the prompt"
    );

    let grammar = json_schema_to_grammar(&schema).expect("grammar");
    assert!(grammar.contains("root"), "{grammar}");
    assert!(
        grammar.lines().any(|l| l.starts_with("root ::=")),
        "{grammar}"
    );

    assert!(matches!(
        json_schema_to_grammar(&json!({"type": 5})),
        Err(ChatError::Schema(_))
    ));
    // A bad schema through the template, and a schema with a grammar: errors.
    let r = templates.apply(&ChatRequest {
        json_schema: Some(json!({"type": 5})),
        ..request(system_and_user())
    });
    assert!(r.is_err(), "{r:?}");
    let r = templates.apply(&ChatRequest {
        json_schema: Some(schema),
        grammar: Some("root ::= \"x\"".into()),
        ..request(system_and_user())
    });
    assert!(r.is_err(), "{r:?}");
    // A grammar of the caller's goes to the sampler as the user's.
    let user = templates
        .apply(&ChatRequest {
            grammar: Some("root ::= \"x\"".into()),
            ..request(system_and_user())
        })
        .expect("apply");
    assert_eq!(user.grammar, "root ::= \"x\"");
    assert_eq!(user.grammar_kind, GrammarKind::User);
}

/// (3) The sampler with a schema's grammar keeps Gemma's greedy answer to JSON of that
/// schema; a grammar of two words keeps it to one of them. Bad grammars, lazy grammars
/// without triggers, and a batch index without logits are errors, not crashes.
#[test]
fn grammar_constrains_greedy_output() {
    let session = support::gemma_session();
    let model = session.loaded().model();
    let templates = ChatTemplates::with_template(model, GEMMA3_JINJA).expect("templates");
    // Every value is bounded (and so is the whitespace the grammar allows), so the JSON
    // must end within the token budget.
    let schema = json!({
        "type": "object",
        "properties": {
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "color": {"enum": ["red", "green", "blue"]}
        },
        "required": ["age", "color"],
        "additionalProperties": false
    });
    let params = templates
        .apply(&ChatRequest {
            json_schema: Some(schema),
            ..request(json!([{"role": "user", "content":
                "Reply with a JSON object: \"age\", a person's age, and \"color\", their favourite colour."}]))
        })
        .expect("apply");
    assert!(!params.grammar.is_empty());
    let mut sampler = CommonSampler::new(
        model,
        &SamplerSpec::for_chat(SamplingOptions::greedy(), &params),
    )
    .expect("sampler");
    let (text, ended) = generate(&session, &mut sampler, &params.prompt, 400);
    eprintln!("constrained: {text:?} (ended: {ended})");
    assert!(
        ended,
        "the grammar ends the JSON and then only allows the end: {text:?}"
    );
    let reply = parse_reply(&params, &text, false).expect("parse");
    let value: Value = serde_json::from_str(reply.content.trim()).expect("the reply is JSON");
    let obj = value.as_object().expect("an object");
    let age = obj["age"].as_u64().expect("an integer age");
    assert!(age <= 150, "{value}");
    assert!(
        ["red", "green", "blue"].contains(&obj["color"].as_str().expect("a colour")),
        "{value}"
    );
    assert_eq!(obj.len(), 2, "{value}");
    // Control: without the grammar Gemma 270M does not answer in JSON at all.
    let mut free = CommonSampler::new(
        model,
        &SamplerSpec {
            sampling: SamplingOptions::greedy(),
            ..SamplerSpec::default()
        },
    )
    .expect("sampler");
    let (unconstrained, _) = generate(&session, &mut free, &params.prompt, 48);
    assert!(
        serde_json::from_str::<Value>(unconstrained.trim()).is_err(),
        "{unconstrained:?}"
    );

    // A user grammar on a plain prompt.
    let spec = SamplerSpec {
        sampling: SamplingOptions::greedy(),
        grammar: "root ::= \"yes\" | \"no\"".into(),
        grammar_kind: GrammarKind::User,
        ..SamplerSpec::default()
    };
    let mut yes_no = CommonSampler::new(model, &spec).expect("sampler");
    let (answer, ended) = generate(&session, &mut yes_no, "Is the sky blue? Answer:", 16);
    eprintln!("yes/no: {answer:?}");
    assert!(ended && (answer == "yes" || answer == "no"), "{answer:?}");
    // Control: unconstrained, the answer is longer (" Yes.\n\nIs the sky ...").
    let mut free = CommonSampler::new(
        model,
        &SamplerSpec {
            sampling: SamplingOptions::greedy(),
            ..SamplerSpec::default()
        },
    )
    .expect("sampler");
    let (unconstrained, _) = generate(&session, &mut free, "Is the sky blue? Answer:", 16);
    assert!(
        unconstrained != "yes" && unconstrained != "no",
        "{unconstrained:?}"
    );
    // After that decode only the last token has logits.
    let e = yes_no.try_sample(session.loaded().context(), 3);
    assert!(matches!(e, Err(SamplerError::Sample(_))), "{e:?}");

    // Refused specs.
    let refused = |spec: SamplerSpec| match CommonSampler::new(model, &spec) {
        Err(e) => e,
        Ok(_) => panic!("accepted {spec:?}"),
    };
    let e = refused(SamplerSpec {
        grammar: "this is not GBNF".into(),
        grammar_kind: GrammarKind::User,
        ..SamplerSpec::default()
    });
    assert!(matches!(e, SamplerError::Init(_)), "{e}");
    let e = refused(SamplerSpec {
        grammar: "root ::= \"x\"".into(),
        grammar_lazy: true,
        ..SamplerSpec::default()
    });
    assert!(matches!(e, SamplerError::Init(_)), "{e}");
    let e = refused(SamplerSpec {
        sampling: SamplingOptions {
            top_p: 2.0,
            ..SamplingOptions::default()
        },
        ..SamplerSpec::default()
    });
    assert!(matches!(e, SamplerError::Sampling(_)), "{e}");
    // A template grammar that the generation prompt does not fit.
    let e = refused(SamplerSpec {
        grammar: "root ::= \"{\"".into(),
        generation_prompt: "<start_of_turn>model\n".into(),
        ..SamplerSpec::default()
    });
    assert!(matches!(e, SamplerError::Init(_)), "{e}");
    let mut plain = CommonSampler::new(model, &SamplerSpec::default()).expect("sampler");
    assert!(plain.accept_prompt(&[-5]).is_err());
}

/// (4) Tool calling with a Hermes-style template (Qwen 2.5's): the tools are in the
/// prompt, the grammar waits for `<tool_call>`, and a hand-written call parses back.
#[test]
fn tool_calls_with_a_hermes_template() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = session_of(&gemma_with_template(dir.path(), QWEN25_JINJA));
    let model = session.loaded().model();
    let templates = ChatTemplates::new(model).expect("templates");
    let info = templates.info().expect("info");
    eprintln!("caps: {:?}", info.caps);
    assert_eq!(info.caps.get("supports_tools"), Some(&true));
    assert_eq!(info.caps.get("supports_tool_calls"), Some(&true));

    let tools = json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }
        }
    }]);
    let ask = json!([{"role": "user", "content": "What is the weather in Paris?"}]);
    let params = templates
        .apply(&ChatRequest {
            tools: Some(tools.clone()),
            tool_choice: Some("auto".into()),
            ..request(ask.clone())
        })
        .expect("apply");
    eprintln!("tool params: {params:#?}");
    assert!(params.prompt.starts_with("<|im_start|>system\n"));
    assert!(params.prompt.contains("get_weather"));
    assert!(params.prompt.contains("<tools>\n{"));
    assert!(params.prompt.ends_with(
        "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n"
    ));
    assert_ne!(params.format, 0, "a tool-call format, not content only");
    assert!(!params.grammar.is_empty());
    assert!(
        params.grammar_lazy,
        "tool_choice auto: the grammar waits for a call"
    );
    assert!(
        params
            .grammar_triggers
            .iter()
            .any(|t| t.value.contains("<tool_call>")),
        "{:?}",
        params.grammar_triggers
    );
    assert_eq!(params.generation_prompt, "<|im_start|>assistant\n");
    // The sampler takes the lazy grammar with its word trigger.
    CommonSampler::new(
        model,
        &SamplerSpec::for_chat(SamplingOptions::greedy(), &params),
    )
    .expect("sampler");

    // The override path gives the same.
    let overridden = ChatTemplates::with_template(model, QWEN25_JINJA).expect("override");
    let again = overridden
        .apply(&ChatRequest {
            tools: Some(tools.clone()),
            ..request(ask.clone())
        })
        .expect("apply");
    assert_eq!(again.prompt, params.prompt);

    let call = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    let reply = parse_reply(&params, call, false).expect("parse");
    assert_eq!(reply.tool_calls.len(), 1, "{reply:?}");
    assert_eq!(reply.tool_calls[0].name, "get_weather");
    let args: Value = serde_json::from_str(&reply.tool_calls[0].arguments).expect("arguments JSON");
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(reply.content.trim(), "");
    // A stream: the parser takes every prefix of the call.
    let parser = ReplyParser::new(&params).expect("parser");
    for end in 0..=call.len() {
        if call.is_char_boundary(end) {
            parser.parse(&call[..end], true).expect("partial parse");
        }
    }
    assert_eq!(parser.parse(call, false).expect("parse"), reply);
    // Plain text is content.
    let text = parse_reply(&params, "It is sunny in Paris.", false).expect("parse");
    assert_eq!(text.content, "It is sunny in Paris.");
    assert!(text.tool_calls.is_empty());

    // tool_choice required: the grammar applies from the first token.
    let required = templates
        .apply(&ChatRequest {
            tools: Some(tools.clone()),
            tool_choice: Some("required".into()),
            ..request(ask)
        })
        .expect("apply");
    assert!(!required.grammar.is_empty() && !required.grammar_lazy);

    // A finished call and its result render in the template's format.
    let history = templates
        .apply(&ChatRequest {
            tools: Some(tools),
            ..request(json!([
                {"role": "user", "content": "What is the weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
                }]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees"}
            ]))
        })
        .expect("apply");
    assert!(
        history.prompt.contains(
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
        ),
        "{}",
        history.prompt
    );
    assert!(history
        .prompt
        .contains("<|im_start|>user\n<tool_response>\n18 degrees\n</tool_response><|im_end|>\n"));
}

/// (5) A reply in plain text comes back unchanged, through the Gemma template's parser
/// (which starts with its generation prompt) and without a parser.
#[test]
fn plain_content_reply_is_unchanged() {
    let session = support::gemma_session();
    let templates =
        ChatTemplates::with_template(session.loaded().model(), GEMMA3_JINJA).expect("templates");
    let params = templates.apply(&request(system_and_user())).expect("apply");
    let text = "Hello there!\nHow can I help you today? {\"not\": \"a call\"}";
    let expected = ParsedReply {
        content: text.to_owned(),
        reasoning_content: String::new(),
        tool_calls: Vec::new(),
    };
    assert_eq!(parse_reply(&params, text, false).expect("parse"), expected);
    assert_eq!(parse_reply(&params, text, true).expect("parse"), expected);
    assert_eq!(
        parse_reply(&ChatParams::default(), text, false).expect("parse"),
        expected
    );
}
