/*
 * strix_shim.h: a small C API over the parts of llama.cpp's `common` library that
 * llama-cpp-2's public API does not reach. build.rs compiles strix_shim.cpp with `cc`
 * against the llama.cpp bundled in llama-cpp-sys-2 and binds this header with bindgen.
 *
 * The header is self-contained C (only <stdint.h>, <stddef.h>, <stdbool.h>) so that the
 * generated bindings carry no copy of llama.h; every llama.cpp type stays on the C++ side.
 *
 * Every function catches all C++ exceptions: a C++ exception unwinding into Rust is
 * undefined behaviour. Errors come back as a STRIX_ERR_* code plus a message written
 * into the caller's buffer (NUL-terminated, truncated to its capacity).
 *
 * Nothing here is thread safe: llama.cpp's memory measurement swaps the global llama
 * logger while it runs. The Rust side serialises every call behind one mutex.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRIX_OK 0
#define STRIX_ERR_INVALID_ARGUMENT 1
#define STRIX_ERR_EXCEPTION 2

/* Fixed string capacities of the output structs (including the NUL). */
#define STRIX_NAME_CAP 128
#define STRIX_PATTERN_CAP 128
/* Capacity of strix_fit_result.tensor_split; llama_max_devices() is 16 in this llama.cpp. */
#define STRIX_MAX_DEVICES 16

/* The llama.cpp parameters that change how much memory a model + context needs.
 * Values follow llama.cpp's own conventions (llama_model_params / llama_context_params). */
struct strix_mem_params {
    /* llama_model_params */
    int32_t n_gpu_layers;  /* layers in device memory; negative = all (llama.cpp: -1) */
    uint32_t n_cpu_moe;    /* keep the MoE expert weights of the first N layers in host
                              memory, exactly as llama.cpp's `--n-cpu-moe N` */
    bool use_mmap;         /* load_mode MMAP (true) or NONE (false) */
    bool no_host;          /* bypass host buffer types so extra buffer types can be used */
    bool use_extra_bufts;  /* allow extra buffer types (CPU weight repacking) */
    int32_t main_gpu;      /* device used with split_mode NONE */
    int32_t split_mode;    /* enum llama_split_mode: 0 none, 1 layer, 2 row */
    /* llama_context_params */
    uint32_t n_ctx;        /* 0 = the model's training context */
    uint32_t n_batch;
    uint32_t n_ubatch;
    uint32_t n_seq_max;
    int32_t type_k;        /* enum ggml_type id of the K cache */
    int32_t type_v;        /* enum ggml_type id of the V cache */
    int32_t flash_attn;    /* enum llama_flash_attn_type: -1 auto, 0 off, 1 on */
    bool offload_kqv;      /* KV cache and KQV ops on the device */
    bool swa_full;         /* full-size cache for sliding-window layers */
    bool kv_unified;       /* one KV buffer shared by all sequences */
};

/* One device's projected memory, as common_get_device_memory_data reports it. */
struct strix_device_mem {
    char name[STRIX_NAME_CAP];        /* ggml_backend_dev_name, e.g. "Vulkan0"; "CPU" for the host */
    char description[STRIX_NAME_CAP]; /* ggml_backend_dev_description */
    bool is_host;                     /* the last entry: host (system) memory */
    int64_t total;                    /* device memory as the backend reports it, bytes */
    int64_t free;
    uint64_t model;                   /* weights */
    uint64_t context;                 /* KV cache / recurrent state */
    uint64_t compute;                 /* compute (scheduler) buffers */
};

/* Hyperparameters llama.cpp reports while measuring. */
struct strix_model_info {
    uint32_t n_layer;     /* repeating layers; llama.cpp's n_gpu_layers ranges over 0..=n_layer+1
                             (the +1 is the output layer) */
    uint32_t n_ctx_train;
    uint32_t n_expert;    /* 0 for dense models */
};

/* A tensor buffer-type override chosen by the fit. */
struct strix_fit_override {
    char pattern[STRIX_PATTERN_CAP]; /* regex over tensor names */
    char buft[STRIX_NAME_CAP];       /* ggml_backend_buft_name, e.g. "CPU" */
};

struct strix_fit_result {
    int32_t status;        /* enum common_params_fit_status: 0 success, 1 failure, 2 error */
    int32_t n_gpu_layers;  /* after fitting */
    uint32_t n_ctx;        /* after fitting */
    size_t n_devices;      /* number of valid entries in tensor_split (llama_max_devices) */
    float tensor_split[STRIX_MAX_DEVICES];
};

/*
 * Why: llama.cpp's per-device memory projection (common_get_device_memory_data in
 * common/fit.h) is a C++ function with std::vector / reference out-parameters; neither
 * llama-cpp-sys-2's C bindings nor llama-cpp-2's safe API expose it (llama-cpp-2 only
 * has fit_params and a print of an already allocated context's breakdown).
 *
 * Loads `model_path` with no_alloc (no weights read, nothing allocated), creates a
 * context with `p`, and writes one entry per device the model uses followed by the
 * host entry (is_host = true, always last). `n_out` receives the number of entries;
 * if it exceeds `out_cap` only `out_cap` are written (call again with a larger buffer).
 * `info` may be NULL.
 */
int32_t strix_device_memory(
    const char * model_path,
    const struct strix_mem_params * p,
    struct strix_device_mem * out,
    size_t out_cap,
    size_t * n_out,
    struct strix_model_info * info,
    char * err,
    size_t err_cap);

/*
 * Why: llama-cpp-sys-2 exposes common_fit_params as llama_rs_fit_params, but that
 * wrapper lets C++ exceptions other than those common_fit_params catches itself escape
 * into Rust, takes raw llama_model_params we would have to rebuild in Rust (including
 * the --n-cpu-moe override strings), and leaves the chosen overrides as pointers into
 * llama.cpp's static storage. This calls llama_rs_fit_params inside a catch-all with
 * parameters built from `p` exactly like strix_device_memory and copies the result out.
 *
 * `margins` holds `n_margins` bytes to leave free per device (device order as in
 * strix_device_memory; with no GPU, margins[0] applies to host memory); missing
 * entries repeat the last one. `n_ctx_min` is the smallest context the fit may pick
 * when p->n_ctx is 0. `log_level` is the ggml_log_level below which the fit's llama
 * logs are demoted to debug. Overrides chosen by the fit go to `overrides` (`n_overrides`
 * receives the full count, even beyond `overrides_cap`).
 *
 * The fit only changes what is still at llama.cpp's default: n_gpu_layers -1 and no
 * tensor overrides (so n_cpu_moe must be 0 for it to place layers), n_ctx 0.
 */
int32_t strix_fit_params(
    const char * model_path,
    const struct strix_mem_params * p,
    const uint64_t * margins,
    size_t n_margins,
    uint32_t n_ctx_min,
    int32_t log_level,
    struct strix_fit_result * out,
    struct strix_fit_override * overrides,
    size_t overrides_cap,
    size_t * n_overrides,
    char * err,
    size_t err_cap);

/*
 * Why: llama.cpp's `common` library logs (the fit's trace, the memory breakdown table)
 * through its own logger (common/log.h), which writes straight to stdout/stderr and is
 * not reachable through llama_log_set/ggml_log_set nor through llama-cpp-2. This sets its
 * verbosity threshold (common_log_set_verbosity_thold): -1 silences it, 3 is llama.cpp's
 * default (info), 4 adds the fit's trace output, 5 debug.
 */
void strix_common_log_set_verbosity(int32_t verbosity);

/* ------------------------------------------------------------------------------------
 * The runtime (src/runtime/actual.rs): a loaded model and context, and llama.cpp's own
 * greedy decode loop as a reference for the tests. These do not touch the global
 * logger; the readers only read the model/context they are given (the caller must not
 * decode with that context at the same time).
 * ------------------------------------------------------------------------------------ */

/* Opaque llama.cpp handles (llama.h's own structs; only pointers cross the boundary). */
struct llama_model;
struct llama_context;

/* One buffer type of a loaded context and its model, as llama_get_memory_breakdown
 * (src/llama-ext.h; llama_context::memory_breakdown) reports the allocated buffers. */
struct strix_buft_mem {
    char buft[STRIX_NAME_CAP];        /* ggml_backend_buft_name: "CPU", "CPU_REPACK", "Vulkan0", ... */
    char device[STRIX_NAME_CAP];      /* ggml_backend_dev_name of the buffer type's device; "" if none */
    char description[STRIX_NAME_CAP]; /* ggml_backend_dev_description; "" if none */
    bool is_host;                     /* ggml_backend_buft_is_host: plain host memory */
    bool is_cpu_device;               /* the device is the CPU (host memory), e.g. CPU_REPACK */
    int32_t model_device;             /* index of the device in the model's device list
                                         (llama_model_get_device), -1 if none */
    uint64_t model;                   /* weights */
    uint64_t context;                 /* KV cache / recurrent state */
    uint64_t compute;                 /* compute (scheduler) buffers */
};

/*
 * Why: llama.cpp's breakdown of a loaded context's real memory is a C++ std::map in the
 * staging header src/llama-ext.h; llama-cpp-2 only prints it.
 *
 * Writes one entry per buffer type that holds memory of `ctx` (model, context or
 * compute). `n_out` receives the count; at most `out_cap` entries are written.
 */
int32_t strix_context_memory(
    const struct llama_context * ctx,
    struct strix_buft_mem * out,
    size_t out_cap,
    size_t * n_out,
    char * err,
    size_t err_cap);

/* Where one weight tensor of a loaded model lives. */
struct strix_tensor_buft {
    char name[STRIX_NAME_CAP]; /* tensor name, e.g. "blk.0.ffn_up_exps.weight" */
    char buft[STRIX_NAME_CAP]; /* ggml_backend_buft_name of its buffer; "" if unallocated */
    uint64_t bytes;            /* ggml_nbytes */
};

/*
 * Why: llama.h has no way to ask which buffer a weight went to, which is what shows
 * that tensor buffer-type overrides (--n-cpu-moe) took effect. Uses llama.cpp's
 * llama_internal_get_tensor_map (src/llama-model.h, "for internal test use").
 *
 * Writes one entry per tensor of `model`, in llama.cpp's order; `n_out` receives the
 * count, at most `out_cap` entries are written.
 */
int32_t strix_model_tensor_bufts(
    const struct llama_model * model,
    struct strix_tensor_buft * out,
    size_t out_cap,
    size_t * n_out,
    char * err,
    size_t err_cap);

/* Parameters of strix_reference_greedy (llama_model_params / llama_context_params). */
struct strix_ref_params {
    int32_t n_gpu_layers;
    bool use_mmap;        /* load_mode MMAP or NONE */
    uint32_t n_ctx;
    uint32_t n_batch;
    uint32_t n_ubatch;
    int32_t n_threads;
    int32_t n_threads_batch;
    int32_t flash_attn;   /* enum llama_flash_attn_type */
    int32_t type_k;       /* enum ggml_type */
    int32_t type_v;
    bool offload_kqv;
    bool swa_full;
};

/*
 * Why: a reference for the runtime's tests, written against llama.h only, step by step
 * as llama.cpp's examples/simple/simple.cpp: load the model, create a context,
 * tokenize `prompt` (adding BOS etc., parsing special tokens), decode it as one batch
 * (llama_batch_get_one), then sample with a chain holding only llama_sampler_init_greedy
 * and decode each new token until an end-of-generation token (llama_vocab_is_eog) or
 * `n_predict` tokens. The prompt's tokens go to `prompt_tokens` (`n_prompt` receives the
 * count), the generated ones (the end-of-generation token not included) to `out`
 * (`n_out` receives the count). Frees everything it created.
 */
int32_t strix_reference_greedy(
    const char * model_path,
    const struct strix_ref_params * p,
    const char * prompt,
    int32_t n_predict,
    int32_t * prompt_tokens,
    size_t prompt_cap,
    size_t * n_prompt,
    int32_t * out,
    size_t out_cap,
    size_t * n_out,
    char * err,
    size_t err_cap);

/* ------------------------------------------------------------------------------------
 * llama.cpp's chat layer (common/chat.h: Jinja chat templates, tool calling, JSON-schema
 * grammars, reply parsing) and its common_sampler (common/sampling.h: the sampler chain
 * with grammar and lazy grammar triggers), as llama-server uses them
 * (src/runtime/chat.rs, src/runtime/sampler.rs).
 *
 * Why: all of this is C++ (std::string, std::vector, common_json, PEG arenas) in
 * llama.cpp's `common` library; neither llama.h nor llama-cpp-2 reaches it. Structured
 * values cross the boundary as JSON text so that this header stays plain C.
 *
 * Strings returned as `char *` are NUL-terminated JSON (or GBNF) allocated with malloc;
 * free them with strix_string_free. NULL means failure, with the reason in `err`.
 * These functions touch no process-wide state (only common's logger, which is
 * thread safe); one object must not be used by two threads at once.
 * ------------------------------------------------------------------------------------ */

/* Frees a string returned by this API (NULL is fine). */
void strix_string_free(char * s);

/* A model's chat templates (common_chat_templates) and how to apply them. Keeps copies
 * of the template sources and the BOS/EOS texts: it does not refer to the model. */
struct strix_chat_templates;

/*
 * The chat templates of `model`, as llama-server (--jinja, the default) sets them up
 * with common_chat_templates_init: the model's `tokenizer.chat_template` (plus its
 * `tool_use` variant), or ChatML when it has none. `chat_template_override` (NULL or ""
 * for none) replaces the model's: Jinja source, or the name of one of llama.cpp's
 * built-in templates (llama_chat_builtin_templates, e.g. "gemma"), which is then applied
 * by llama_chat_apply_template (llama-server's --no-jinja path: no tools, no reply
 * parser; a JSON schema becomes a plain grammar). "chatml" means llama.cpp's ChatML Jinja.
 */
struct strix_chat_templates * strix_chat_templates_init(
    const struct llama_model * model,
    const char * chat_template_override,
    char * err,
    size_t err_cap);

void strix_chat_templates_free(struct strix_chat_templates * tmpls);

/*
 * What the templates are: {"source": str, "tool_use_source": str ("" if none),
 * "explicit": bool (common_chat_templates_was_explicit), "use_jinja": bool,
 * "caps": {name: bool} (common_chat_templates_get_caps; {} without Jinja),
 * "supports_thinking": bool (common_chat_templates_support_enable_thinking)}.
 */
char * strix_chat_templates_info(const struct strix_chat_templates * tmpls, char * err, size_t err_cap);

/*
 * Applies the templates to an OpenAI-style request, the way llama-server's
 * oaicompat_chat_params_parse builds common_chat_templates_inputs and calls
 * common_chat_templates_apply. `request_json`:
 *   {"messages": [...]            OpenAI messages (common_chat_msgs_parse_oaicompat):
 *                                 system/user/assistant (with "tool_calls")/tool (with
 *                                 "tool_call_id"); content a string, null or an array of
 *                                 {"type": "text", "text": ...} parts. Required.
 *    "tools": [...] | null,       OpenAI tools (common_chat_tools_parse_oaicompat)
 *    "tool_choice": "auto" | "none" | "required" | null (= "auto"),
 *    "parallel_tool_calls": bool  (default false),
 *    "json_schema": {...} | null, a response format: the template's parser and grammar
 *                                 then expect JSON of this schema
 *    "grammar": str | null,       a user GBNF grammar (not with json_schema; not with
 *                                 tools unless tool_choice is "none")
 *    "add_generation_prompt": bool (default true),
 *    "enable_thinking": bool      (default true),
 *    "reasoning_format": str      (optional: "none", "auto", "deepseek" (default, as
 *                                 llama-server's), "deepseek-legacy"; "none" leaves
 *                                 thinking in the content)}
 * Returns {"prompt": str, "grammar": str, "grammar_type": "tool_calls" | "user" (only
 *   when "grammar" is not empty: "tool_calls" for a grammar the template made (tool calls
 *   or a response format; llama-server's grammar_type "tool_calls"), "user" for the
 *   request's own grammar), "grammar_lazy": bool,
 *   "grammar_triggers": [{"type": int (common_grammar_trigger_type: 0 token, 1 word,
 *   2 pattern, 3 full pattern), "value": str, "token": int (-1 unless a token trigger)}],
 *   "preserved_tokens": [str], "additional_stops": [str], "format": int
 *   (common_chat_format), "format_name": str, "parser": str (the serialised PEG parser
 *   for strix_chat_parse; "" for none), "generation_prompt": str, "supports_thinking":
 *   bool, "thinking_start_tag": str, "thinking_end_tags": [str]}.
 */
char * strix_chat_apply(
    const struct strix_chat_templates * tmpls,
    const char * request_json,
    char * err,
    size_t err_cap);

/*
 * Parses a generated reply with common_chat_parse, as llama-server does for each
 * streamed update and the final text. `parse_json`: {"text": str (the generated text
 * only, special tokens rendered as llama-server does: see strix_sampler_is_preserved),
 * "is_partial": bool (more text may follow), "format": int, "parser": str,
 * "generation_prompt": str (all three from strix_chat_apply)}. Returns {"content": str,
 * "reasoning_content": str, "tool_calls": [{"id": str ("" : llama.cpp leaves ids to
 * the caller), "name": str, "arguments": str (JSON text)}]}.
 */
char * strix_chat_parse(const char * parse_json, char * err, size_t err_cap);

/* A reply parser with its PEG arena loaded once (for parsing a stream again and again). */
struct strix_chat_parser;

/* `parser_json`: {"format": int, "parser": str, "generation_prompt": str}. */
struct strix_chat_parser * strix_chat_parser_init(const char * parser_json, char * err, size_t err_cap);

/* As strix_chat_parse, for `text` of `len` bytes (UTF-8, NUL bytes allowed). */
char * strix_chat_parser_parse(
    const struct strix_chat_parser * parser,
    const char * text,
    size_t len,
    bool is_partial,
    char * err,
    size_t err_cap);

void strix_chat_parser_free(struct strix_chat_parser * parser);

/* A GBNF grammar for a JSON schema (`schema_json`), by json_schema_to_grammar. */
char * strix_json_schema_to_grammar(const char * schema_json, char * err, size_t err_cap);

/* llama.cpp's common_sampler, with the token ids of the preserved tokens. */
struct strix_sampler;

/*
 * A common_sampler for `model`, with common_params_sampling built the way llama-server's
 * params_from_json_cmpl builds it. `params_json` (every key optional; defaults are
 * common_params_sampling's): {"temperature": number (<= 0: greedy), "top_k": int (<= 0:
 * off), "top_p": number, "min_p": number, "seed": uint32 (4294967295: llama.cpp picks),
 * "repeat_penalty": number, "repeat_last_n": int (-1: the model's training context, 0:
 * off), "grammar": str, "grammar_type": "tool_calls" | "output_format" | "user"
 * (default "tool_calls"; the first two get `generation_prompt` fed to the grammar before
 * sampling, unless it is lazy), "grammar_lazy": bool, "grammar_triggers": [as in
 * strix_chat_apply], "preserved_tokens": [str], "generation_prompt": str}.
 * As llama-server: a preserved token that is one token of the vocabulary is kept by id
 * (others are dropped); a word trigger that is one token becomes a token trigger (and
 * must be a preserved token); a lazy grammar needs triggers. The sampler refers to the
 * model's vocabulary: free it before the model.
 */
struct strix_sampler * strix_sampler_init(
    const struct llama_model * model,
    const char * params_json,
    char * err,
    size_t err_cap);

/*
 * Samples the token at batch index `idx` of the last llama_decode of `ctx` (-1: the
 * last output) with common_sampler_sample and accepts it (common_sampler_accept(...,
 * true): the grammar advances). Returns the token, or -1 with the reason in `err` (no
 * logits at `idx`, a context of another model, a grammar error).
 */
int32_t strix_sampler_sample(
    struct strix_sampler * smpl,
    struct llama_context * ctx,
    int32_t idx,
    char * err,
    size_t err_cap);

/*
 * Feeds `n` tokens that were not sampled (the prompt) to the sampler chain's history
 * (repeat penalties), as llama-server does before generating: common_sampler_accept(...,
 * false); the grammar does not see them. Returns STRIX_OK or an error code.
 */
int32_t strix_sampler_accept(
    struct strix_sampler * smpl,
    const int32_t * tokens,
    size_t n,
    char * err,
    size_t err_cap);

/* 1 if `token` is one of the sampler's preserved tokens (llama-server renders these as
 * text, special or not, before parsing the reply), else 0. */
int32_t strix_sampler_is_preserved(const struct strix_sampler * smpl, int32_t token);

void strix_sampler_free(struct strix_sampler * smpl);

#ifdef __cplusplus
}
#endif
