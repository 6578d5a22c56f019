//! llama.cpp's own chat layer (`common/chat.h`), as llama-server uses it: Jinja chat
//! templates, tool calling, JSON-schema grammars and parsing the model's reply back into
//! content, reasoning and tool calls.
//!
//! [`ChatTemplates::apply`] turns an OpenAI-style request ([`ChatRequest`]) into the
//! prompt and everything generation needs ([`ChatParams`]: the grammar and its lazy
//! triggers, the preserved tokens, extra stop strings, the reply format and its parser).
//! [`super::sampler::CommonSampler`] samples with that grammar; [`parse_reply`] (or a
//! [`ReplyParser`], for a stream) reads the generated text back.
//!
//! Everything goes through the C++ shim (`shim/strix_shim.h`) as JSON text.

use super::ffi;
use super::model::Model;
use serde::{Deserialize, Serialize};
use std::ffi::{c_char, CStr, CString};
use std::ptr::NonNull;

/// Room for the shim's error messages (template errors quote the template).
pub(crate) const ERR_CAP: usize = 4096;

/// Why a chat call failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The template could not be set up or applied to the request: a bad request (an
    /// unknown role, a malformed message or tool, `json_schema` with `grammar`, ...) or a
    /// template that refuses the conversation (e.g. Gemma's "roles must alternate").
    #[error("the chat template failed: {0}")]
    Template(String),
    /// A JSON schema llama.cpp cannot turn into a grammar.
    #[error("the JSON schema cannot be turned into a grammar: {0}")]
    Schema(String),
    /// The reply does not match the format it was generated in, or the parser is bad.
    #[error("the reply could not be parsed: {0}")]
    Parse(String),
    /// A string for llama.cpp contains a NUL byte.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
    /// The shim's answer was not the JSON it promises (a bug).
    #[error("the chat shim answered unexpected JSON: {0}")]
    Json(String),
}

/// An OpenAI-style chat request, as llama-server reads `/v1/chat/completions`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ChatRequest {
    /// The OpenAI messages (an array): `system`, `user`, `assistant` (content and/or
    /// `tool_calls`), `tool` (with `tool_call_id`); content a string, null, or an array
    /// of `{"type": "text", "text": ...}` parts.
    pub messages: serde_json::Value,
    /// OpenAI tools (`[{"type": "function", "function": {...}}]`), if any.
    pub tools: Option<serde_json::Value>,
    /// `auto` (the default), `none` or `required`.
    pub tool_choice: Option<String>,
    /// Whether the model may call several tools at once.
    pub parallel_tool_calls: bool,
    /// A response format: the reply must be JSON of this schema (the template's parser
    /// and grammar then expect it).
    pub json_schema: Option<serde_json::Value>,
    /// A GBNF grammar of the caller's (not with `json_schema`, nor with tools unless
    /// `tool_choice` is `none`).
    pub grammar: Option<String>,
    /// Open the assistant's turn at the end of the prompt.
    pub add_generation_prompt: bool,
    /// Let a thinking model think (templates that have the switch).
    pub enable_thinking: bool,
}

/// Which sampler grammar type a grammar is (llama.cpp's `common_grammar_type`): whether
/// the generation prompt is fed to it before the first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GrammarKind {
    /// Made by the chat template, for tool calls or a response format (llama-server's
    /// `grammar_type: "tool_calls"`): it starts with the generation prompt, which the
    /// sampler feeds to it first (unless it is lazy).
    #[default]
    #[serde(rename = "tool_calls")]
    Template,
    /// From a JSON schema outside chat (llama-server's `json_schema` field): fed the
    /// generation prompt too, which is empty outside chat.
    #[serde(rename = "output_format")]
    OutputFormat,
    /// The caller's own GBNF: constrains the generated text only.
    #[serde(rename = "user")]
    User,
}

/// What applying the chat template gives: the prompt and how to generate and read the
/// reply (llama.cpp's `common_chat_params`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ChatParams {
    /// The prompt text. Tokenize it with special tokens parsed; llama.cpp has removed a
    /// leading BOS text when the model adds BOS itself.
    pub prompt: String,
    /// The GBNF grammar for the sampler ("" for none).
    pub grammar: String,
    /// Where `grammar` comes from (see [`GrammarKind`]).
    #[serde(default, rename = "grammar_type")]
    pub grammar_kind: GrammarKind,
    /// The grammar only applies once a trigger appears.
    pub grammar_lazy: bool,
    /// The triggers of a lazy grammar.
    pub grammar_triggers: Vec<GrammarTrigger>,
    /// Texts the model writes as special tokens that the reply parser must see: render
    /// these tokens as text ([`super::sampler::CommonSampler::is_preserved`]).
    pub preserved_tokens: Vec<String>,
    /// More stop strings the format needs.
    pub additional_stops: Vec<String>,
    /// llama.cpp's `common_chat_format` of the reply.
    pub format: i32,
    /// Its name (`Content-only`, `peg-native`, ...).
    pub format_name: String,
    /// The serialised PEG parser of the reply ("" for plain content).
    pub parser: String,
    /// The text that opens the assistant's turn at the end of the prompt (e.g.
    /// `<start_of_turn>model\n`): the reply parser and the grammar start with it.
    pub generation_prompt: String,
    /// The template has a thinking mode.
    #[serde(default)]
    pub supports_thinking: bool,
    /// The tag that opens thinking (e.g. `<think>`), if any.
    #[serde(default)]
    pub thinking_start_tag: String,
    /// The tags that close thinking.
    #[serde(default)]
    pub thinking_end_tags: Vec<String>,
}

/// A trigger of a lazy grammar (llama.cpp's `common_grammar_trigger`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct GrammarTrigger {
    /// `common_grammar_trigger_type`: 0 token, 1 word, 2 pattern, 3 full pattern.
    #[serde(rename = "type")]
    pub kind: i32,
    /// The word or regex (the token's text for a token trigger).
    pub value: String,
    /// The token id of a token trigger, else -1.
    pub token: i32,
}

/// A parsed reply (llama.cpp's `common_chat_msg`).
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
pub struct ParsedReply {
    /// The answer text.
    pub content: String,
    /// The thinking, when the format separates it.
    pub reasoning_content: String,
    /// The tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
}

/// One tool call of a reply.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ToolCall {
    /// The id the model wrote, usually "": llama.cpp leaves ids to the caller
    /// (llama-server makes random ones and keeps them per index across a stream).
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
}

/// What a [`ChatTemplates`] is ([`ChatTemplates::info`]).
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
pub struct TemplateInfo {
    /// The default template's source (Jinja, or a built-in name).
    pub source: String,
    /// The `tool_use` variant's source ("" if none).
    pub tool_use_source: String,
    /// The model (or the caller) gave a template: not llama.cpp's ChatML fallback.
    pub explicit: bool,
    /// Applied as Jinja (false: a built-in template by `llama_chat_apply_template`).
    pub use_jinja: bool,
    /// llama.cpp's reading of the template's abilities (`supports_tools`,
    /// `supports_system_role`, ...).
    pub caps: std::collections::BTreeMap<String, bool>,
    /// The template has a thinking switch.
    pub supports_thinking: bool,
}

fn err_buf() -> Vec<c_char> {
    vec![0; ERR_CAP]
}

/// The message the shim wrote into `err`.
pub(crate) fn err_text(err: &[c_char]) -> String {
    let bytes: Vec<u8> = err
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let msg = String::from_utf8_lossy(&bytes).into_owned();
    if msg.is_empty() {
        "llama.cpp gave no reason".to_owned()
    } else {
        msg
    }
}

/// Takes a string the shim returned (NULL: the error in `err`), freeing it.
fn take_string(p: *mut c_char, err: &[c_char]) -> Result<String, String> {
    if p.is_null() {
        return Err(err_text(err));
    }
    // SAFETY: a NUL-terminated string from the shim, freed once right after the copy.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: allocated by the shim with malloc; not used after.
    unsafe { ffi::strix_string_free(p) };
    Ok(s)
}

fn json_cstring(value: &impl Serialize) -> Result<CString, ChatError> {
    let text = serde_json::to_string(value).map_err(|e| ChatError::Json(e.to_string()))?;
    // serde_json escapes NUL as \u0000, so this cannot fail; map it anyway.
    CString::new(text).map_err(|_| ChatError::Nul("the JSON for llama.cpp"))
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ChatError> {
    serde_json::from_str(text).map_err(|e| ChatError::Json(format!("{e}: {text}")))
}

/// A model's chat templates (llama.cpp's `common_chat_templates`), freed on drop. Holds
/// copies of the template sources: it does not borrow the model.
pub struct ChatTemplates {
    ptr: NonNull<ffi::strix_chat_templates>,
}

// SAFETY: the templates are plain C++ data owned by this handle; nothing else points at
// them and llama.cpp keeps no thread-local state for them.
unsafe impl Send for ChatTemplates {}

impl Drop for ChatTemplates {
    fn drop(&mut self) {
        // SAFETY: from strix_chat_templates_init, freed once.
        unsafe { ffi::strix_chat_templates_free(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for ChatTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplates").finish_non_exhaustive()
    }
}

impl ChatTemplates {
    /// The templates of `model`, as llama-server sets them up: its
    /// `tokenizer.chat_template` (and a `tool_use` variant), or llama.cpp's ChatML when
    /// it has none.
    pub fn new(model: &Model) -> Result<Self, ChatError> {
        Self::init(model, None)
    }

    /// `template` instead of the model's (llama-server's `--chat-template`): Jinja
    /// source, or the name of one of llama.cpp's built-in templates (`gemma`, `llama3`,
    /// ...), which is then applied without Jinja (no tools, no reply parser; a JSON
    /// schema becomes a plain grammar). `chatml` is llama.cpp's ChatML Jinja.
    pub fn with_template(model: &Model, template: &str) -> Result<Self, ChatError> {
        Self::init(model, Some(template))
    }

    fn init(model: &Model, template: Option<&str>) -> Result<Self, ChatError> {
        let tmpl = template
            .map(CString::new)
            .transpose()
            .map_err(|_| ChatError::Nul("the chat template"))?;
        let mut err = err_buf();
        // SAFETY: live model; the template string outlives the call; err valid for its
        // length; the shim catches C++ exceptions.
        let raw = unsafe {
            ffi::strix_chat_templates_init(
                model.as_ptr().cast(),
                tmpl.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        NonNull::new(raw)
            .map(|ptr| ChatTemplates { ptr })
            .ok_or_else(|| ChatError::Template(err_text(&err)))
    }

    /// The template sources and what llama.cpp makes of them.
    pub fn info(&self) -> Result<TemplateInfo, ChatError> {
        let mut err = err_buf();
        // SAFETY: live handle; err valid for its length.
        let p = unsafe {
            ffi::strix_chat_templates_info(self.ptr.as_ptr(), err.as_mut_ptr(), err.len())
        };
        from_json(&take_string(p, &err).map_err(ChatError::Template)?)
    }

    /// Applies the template to `request` (llama.cpp's `common_chat_templates_apply`,
    /// with the inputs llama-server builds from an OpenAI request).
    pub fn apply(&self, request: &ChatRequest) -> Result<ChatParams, ChatError> {
        let json = json_cstring(request)?;
        let mut err = err_buf();
        // SAFETY: live handle; the JSON outlives the call; err valid for its length.
        let p = unsafe {
            ffi::strix_chat_apply(
                self.ptr.as_ptr(),
                json.as_ptr(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        from_json(&take_string(p, &err).map_err(ChatError::Template)?)
    }
}

#[derive(Serialize)]
struct ParseRequest<'a> {
    text: &'a str,
    is_partial: bool,
    format: i32,
    parser: &'a str,
    generation_prompt: &'a str,
}

/// Parses the generated `text` of a reply made with `params` (llama.cpp's
/// `common_chat_parse`, as llama-server runs it). `text` is the generated text only,
/// with the preserved tokens rendered as text; `is_partial`: more may follow (a stream),
/// so an unfinished tool call is not an error.
pub fn parse_reply(
    params: &ChatParams,
    text: &str,
    is_partial: bool,
) -> Result<ParsedReply, ChatError> {
    let json = json_cstring(&ParseRequest {
        text,
        is_partial,
        format: params.format,
        parser: &params.parser,
        generation_prompt: &params.generation_prompt,
    })?;
    let mut err = err_buf();
    // SAFETY: the JSON outlives the call; err valid for its length.
    let p = unsafe { ffi::strix_chat_parse(json.as_ptr(), err.as_mut_ptr(), err.len()) };
    from_json(&take_string(p, &err).map_err(ChatError::Parse)?)
}

#[derive(Serialize)]
struct ParserParams<'a> {
    format: i32,
    parser: &'a str,
    generation_prompt: &'a str,
}

/// A reply parser with its PEG parser loaded once, for parsing a growing stream again
/// and again ([`parse_reply`] loads it on every call). Freed on drop.
pub struct ReplyParser {
    ptr: NonNull<ffi::strix_chat_parser>,
}

// SAFETY: owned C++ data, not shared.
unsafe impl Send for ReplyParser {}

impl Drop for ReplyParser {
    fn drop(&mut self) {
        // SAFETY: from strix_chat_parser_init, freed once.
        unsafe { ffi::strix_chat_parser_free(self.ptr.as_ptr()) };
    }
}

impl std::fmt::Debug for ReplyParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyParser").finish_non_exhaustive()
    }
}

impl ReplyParser {
    /// The parser of replies made with `params`.
    pub fn new(params: &ChatParams) -> Result<Self, ChatError> {
        let json = json_cstring(&ParserParams {
            format: params.format,
            parser: &params.parser,
            generation_prompt: &params.generation_prompt,
        })?;
        let mut err = err_buf();
        // SAFETY: the JSON outlives the call; err valid for its length.
        let raw =
            unsafe { ffi::strix_chat_parser_init(json.as_ptr(), err.as_mut_ptr(), err.len()) };
        NonNull::new(raw)
            .map(|ptr| ReplyParser { ptr })
            .ok_or_else(|| ChatError::Parse(err_text(&err)))
    }

    /// As [`parse_reply`].
    pub fn parse(&self, text: &str, is_partial: bool) -> Result<ParsedReply, ChatError> {
        let mut err = err_buf();
        // SAFETY: live parser; text valid for its length; err valid for its length.
        let p = unsafe {
            ffi::strix_chat_parser_parse(
                self.ptr.as_ptr(),
                text.as_ptr().cast(),
                text.len(),
                is_partial,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        from_json(&take_string(p, &err).map_err(ChatError::Parse)?)
    }
}

/// A GBNF grammar that accepts exactly the JSON `schema` describes (llama.cpp's
/// `json_schema_to_grammar`; its start rule is `root`).
pub fn json_schema_to_grammar(schema: &serde_json::Value) -> Result<String, ChatError> {
    let json = json_cstring(schema)?;
    let mut err = err_buf();
    // SAFETY: the JSON outlives the call; err valid for its length.
    let p =
        unsafe { ffi::strix_json_schema_to_grammar(json.as_ptr(), err.as_mut_ptr(), err.len()) };
    take_string(p, &err).map_err(ChatError::Schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_grammar_has_a_root_rule() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}},
            "required": ["a"]
        });
        let g = json_schema_to_grammar(&schema).expect("grammar");
        assert!(
            g.lines().any(|l| l.starts_with("root ::=")),
            "no root rule in {g}"
        );
    }

    #[test]
    fn bad_schema_is_an_error() {
        let bad = serde_json::json!({"type": 5});
        match json_schema_to_grammar(&bad) {
            Err(ChatError::Schema(msg)) => assert!(!msg.is_empty()),
            other => panic!("expected a schema error, got {other:?}"),
        }
        let unknown = serde_json::json!({"type": "no-such-type"});
        assert!(json_schema_to_grammar(&unknown).is_err());
    }

    /// Without a parser llama.cpp reads the whole text as content.
    #[test]
    fn plain_content_parses_unchanged() {
        let params = ChatParams::default();
        let text = "Hello, world!\n  {not json} <tool_call>";
        let reply = parse_reply(&params, text, false).expect("parse");
        assert_eq!(
            reply,
            ParsedReply {
                content: text.to_owned(),
                reasoning_content: String::new(),
                tool_calls: Vec::new(),
            }
        );
        let parser = ReplyParser::new(&params).expect("parser");
        assert_eq!(parser.parse(text, true).expect("parse"), reply);
    }

    #[test]
    fn bad_parser_and_format_are_errors() {
        let params = ChatParams {
            parser: "{not a parser".to_owned(),
            ..ChatParams::default()
        };
        assert!(matches!(
            parse_reply(&params, "x", false),
            Err(ChatError::Parse(_))
        ));
        assert!(matches!(
            ReplyParser::new(&params),
            Err(ChatError::Parse(_))
        ));
        let params = ChatParams {
            format: 99,
            ..ChatParams::default()
        };
        assert!(matches!(
            parse_reply(&params, "x", false),
            Err(ChatError::Parse(_))
        ));
    }

    /// A NUL byte in the reply reaches llama.cpp (JSON escapes it; the stream parser
    /// takes a length).
    #[test]
    fn nul_in_reply_is_kept() {
        let params = ChatParams::default();
        let reply = parse_reply(&params, "a\0b", false).expect("parse");
        assert_eq!(reply.content, "a\0b");
        let parser = ReplyParser::new(&params).expect("parser");
        assert_eq!(parser.parse("a\0b", false).expect("parse").content, "a\0b");
    }

    #[test]
    fn grammar_kind_names_match_the_shim() {
        for (kind, name) in [
            (GrammarKind::Template, "\"tool_calls\""),
            (GrammarKind::OutputFormat, "\"output_format\""),
            (GrammarKind::User, "\"user\""),
        ] {
            assert_eq!(serde_json::to_string(&kind).expect("json"), name);
        }
        // A reply without grammar has no grammar_type: the default.
        let p: ChatParams = serde_json::from_str(
            r#"{"prompt":"p","grammar":"","grammar_lazy":false,"grammar_triggers":[],
                "preserved_tokens":[],"additional_stops":[],"format":0,"format_name":"x",
                "parser":"","generation_prompt":""}"#,
        )
        .expect("params");
        assert_eq!(p.grammar_kind, GrammarKind::Template);
    }
}
