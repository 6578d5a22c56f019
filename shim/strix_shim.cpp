// strix_shim.cpp: see strix_shim.h for the API and why each function exists.
//
// Compiled by build.rs (crate `cc`, C++17) against the llama.cpp sources bundled in
// llama-cpp-sys-2; links against the `llama-common` static library and the
// `llama_cpp_sys_2_common_wrapper` library that llama-cpp-sys-2 already builds.

#include "strix_shim.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// chat.h pulls in the Jinja headers, which define static helpers this file does not use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "chat.h"
#pragma GCC diagnostic pop
#include "common.h"
#include "fit.h"
#include "json-schema-to-grammar.h"
#include "json.h"
#include "sampling.h"
#include "ggml-backend.h"
#include "llama.h"
#include "log.h"
#include "wrapper_common.h"  // llama-cpp-sys-2's llama_rs_fit_params
#include "src/llama-ext.h"   // llama_get_memory_breakdown (staging C++ API)

namespace {

void copy_str(char * dst, size_t cap, const char * src) {
    if (dst == nullptr || cap == 0) {
        return;
    }
    if (src == nullptr) {
        src = "";
    }
    std::snprintf(dst, cap, "%s", src);
}

// llama.cpp parameters built from strix_mem_params, plus the storage the override
// list points into. Not copyable: `tbo` points into `patterns` and `m` into `tbo`.
struct built_params {
    llama_model_params m;
    llama_context_params c;
    std::vector<std::string> patterns;
    std::vector<llama_model_tensor_buft_override> tbo;

    built_params() = default;
    built_params(const built_params &) = delete;
    built_params & operator=(const built_params &) = delete;
};

void build_params(const strix_mem_params & p, built_params & out) {
    out.m = llama_model_default_params();
    out.m.n_gpu_layers = p.n_gpu_layers;
    out.m.split_mode = static_cast<llama_split_mode>(p.split_mode);
    out.m.main_gpu = p.main_gpu;
    out.m.load_mode = p.use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    out.m.no_host = p.no_host;
    out.m.use_extra_bufts = p.use_extra_bufts;

    // --n-cpu-moe N, as common/arg.cpp translates it: one CPU buffer-type override per
    // layer 0..N-1 with the pattern llm_ffn_block_regex(i, LLM_FFN_EXPS_REGEX), i.e.
    // "blk\.<i>\.ffn_(up|down|gate|gate_up)_(ch|)exps". arg.cpp goes through
    // llm_add_n_cpu_ffn_overrides, which keeps the strings in a function-static list that
    // grows on every call; here they live as long as the parameters instead.
    out.patterns.clear();
    out.tbo.clear();
    if (p.n_cpu_moe > 0) {
        out.patterns.reserve(p.n_cpu_moe);
        for (uint32_t i = 0; i < p.n_cpu_moe; ++i) {
            out.patterns.push_back(llm_ffn_block_regex(static_cast<int>(i), LLM_FFN_EXPS_REGEX));
        }
        out.tbo.reserve(out.patterns.size() + 1);
        for (const std::string & pat : out.patterns) {
            out.tbo.push_back({pat.c_str(), ggml_backend_cpu_buffer_type()});
        }
        out.tbo.push_back({nullptr, nullptr});
        out.m.tensor_buft_overrides = out.tbo.data();
    }

    out.c = llama_context_default_params();
    out.c.n_ctx = p.n_ctx;
    out.c.n_batch = p.n_batch;
    out.c.n_ubatch = p.n_ubatch;
    out.c.n_seq_max = p.n_seq_max;
    out.c.type_k = static_cast<ggml_type>(p.type_k);
    out.c.type_v = static_cast<ggml_type>(p.type_v);
    out.c.flash_attn_type = static_cast<llama_flash_attn_type>(p.flash_attn);
    out.c.offload_kqv = p.offload_kqv;
    out.c.swa_full = p.swa_full;
    out.c.kv_unified = p.kv_unified;
}

void check_params(const strix_mem_params & p) {
    if (p.type_k < 0 || p.type_k >= GGML_TYPE_COUNT || p.type_v < 0 || p.type_v >= GGML_TYPE_COUNT) {
        throw std::invalid_argument("type_k/type_v is not a ggml_type id");
    }
    if (p.split_mode < LLAMA_SPLIT_MODE_NONE || p.split_mode > LLAMA_SPLIT_MODE_TENSOR) {
        throw std::invalid_argument("split_mode is not a llama_split_mode");
    }
    if (p.flash_attn < LLAMA_FLASH_ATTN_TYPE_AUTO || p.flash_attn > LLAMA_FLASH_ATTN_TYPE_ENABLED) {
        throw std::invalid_argument("flash_attn is not a llama_flash_attn_type");
    }
    if (p.n_seq_max == 0 || p.n_batch == 0 || p.n_ubatch == 0) {
        throw std::invalid_argument("n_batch, n_ubatch and n_seq_max must be positive");
    }
}

// Runs `body`; a C++ exception becomes STRIX_ERR_EXCEPTION with its message in `err`,
// after `on_error` has undone partial work. Nothing may unwind into Rust.
template <typename Body, typename OnError>
int32_t guarded(char * err, size_t err_cap, Body && body, OnError && on_error) {
    try {
        return body();
    } catch (const std::exception & e) {
        on_error();
        copy_str(err, err_cap, e.what());
    } catch (...) {
        on_error();
        copy_str(err, err_cap, "unknown C++ exception");
    }
    return STRIX_ERR_EXCEPTION;
}

}  // namespace

extern "C" int32_t strix_device_memory(
    const char * model_path,
    const strix_mem_params * p,
    strix_device_mem * out,
    size_t out_cap,
    size_t * n_out,
    strix_model_info * info,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (model_path == nullptr || p == nullptr || n_out == nullptr || (out == nullptr && out_cap > 0)) {
        copy_str(err, err_cap, "null argument");
        return STRIX_ERR_INVALID_ARGUMENT;
    }
    *n_out = 0;
    return guarded(err, err_cap, [&]() -> int32_t {
        check_params(*p);
        built_params bp;
        build_params(*p, bp);

        std::vector<ggml_backend_dev_t> devs;
        uint32_t hp_ngl = 0;
        uint32_t hp_n_ctx_train = 0;
        uint32_t hp_n_expert = 0;
        // log_level WARN: llama.cpp's info output during the no_alloc load is demoted to
        // debug (our Rust logger sends it to tracing at that level).
        const common_device_memory_data_vec dmds = common_get_device_memory_data(
            model_path, &bp.m, &bp.c, devs, hp_ngl, hp_n_ctx_train, hp_n_expert, GGML_LOG_LEVEL_WARN);
        if (dmds.size() != devs.size() + 1) {
            throw std::runtime_error("common_get_device_memory_data returned an unexpected number of entries");
        }

        ggml_backend_dev_t cpu_dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
        *n_out = dmds.size();
        for (size_t i = 0; i < dmds.size() && i < out_cap; ++i) {
            const bool is_host = i == devs.size();
            ggml_backend_dev_t dev = is_host ? cpu_dev : devs[i];
            strix_device_mem & o = out[i];
            std::memset(&o, 0, sizeof(o));
            copy_str(o.name, sizeof(o.name), dev ? ggml_backend_dev_name(dev) : "CPU");
            copy_str(o.description, sizeof(o.description), dev ? ggml_backend_dev_description(dev) : "");
            o.is_host = is_host;
            o.total = dmds[i].total;
            o.free = dmds[i].free;
            o.model = dmds[i].model;
            o.context = dmds[i].context;
            o.compute = dmds[i].compute;
        }
        if (info != nullptr) {
            info->n_layer = hp_ngl;
            info->n_ctx_train = hp_n_ctx_train;
            info->n_expert = hp_n_expert;
        }
        return STRIX_OK;
    }, [&] { *n_out = 0; });
}

extern "C" int32_t strix_fit_params(
    const char * model_path,
    const strix_mem_params * p,
    const uint64_t * margins,
    size_t n_margins,
    uint32_t n_ctx_min,
    int32_t log_level,
    strix_fit_result * out,
    strix_fit_override * overrides,
    size_t overrides_cap,
    size_t * n_overrides,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (model_path == nullptr || p == nullptr || out == nullptr || n_overrides == nullptr ||
        (margins == nullptr && n_margins > 0) || (overrides == nullptr && overrides_cap > 0)) {
        copy_str(err, err_cap, "null argument");
        return STRIX_ERR_INVALID_ARGUMENT;
    }
    *n_overrides = 0;
    return guarded(err, err_cap, [&]() -> int32_t {
        check_params(*p);
        built_params bp;
        build_params(*p, bp);

        const size_t max_devices = llama_max_devices();
        // Same buffer sizes as llama-cpp-2's LlamaModelParams::fit_params.
        std::vector<float> tensor_split(max_devices, 0.0f);
        std::vector<llama_model_tensor_buft_override> tbo_out(
            llama_max_tensor_buft_overrides() + 1, llama_model_tensor_buft_override{nullptr, nullptr});
        // llama.cpp's default target is 1 GiB per device (common_params::fit_params_target).
        std::vector<size_t> margins_v(max_devices, size_t(1024) * 1024 * 1024);
        for (size_t i = 0; i < max_devices && n_margins > 0; ++i) {
            margins_v[i] = static_cast<size_t>(margins[std::min(i, n_margins - 1)]);
        }

        const int status = llama_rs_fit_params(
            model_path, &bp.m, &bp.c, tensor_split.data(), tbo_out.data(), margins_v.data(), n_ctx_min,
            nullptr, static_cast<ggml_log_level>(log_level));

        std::memset(out, 0, sizeof(*out));
        out->status = status;
        out->n_gpu_layers = bp.m.n_gpu_layers;
        out->n_ctx = bp.c.n_ctx;
        out->n_devices = std::min<size_t>(max_devices, STRIX_MAX_DEVICES);
        for (size_t i = 0; i < out->n_devices; ++i) {
            out->tensor_split[i] = tensor_split[i];
        }
        // The overrides in effect afterwards: ours (n_cpu_moe) or the ones the fit wrote
        // into tbo_out; the fit's patterns point into llama.cpp's static storage.
        size_t n = 0;
        for (const llama_model_tensor_buft_override * o = bp.m.tensor_buft_overrides; o && o->pattern; ++o, ++n) {
            if (n < overrides_cap) {
                strix_fit_override & d = overrides[n];
                std::memset(&d, 0, sizeof(d));
                copy_str(d.pattern, sizeof(d.pattern), o->pattern);
                copy_str(d.buft, sizeof(d.buft), o->buft ? ggml_backend_buft_name(o->buft) : "");
            }
        }
        *n_overrides = n;
        return STRIX_OK;
    }, [] {});
}

extern "C" void strix_common_log_set_verbosity(int32_t verbosity) {
    common_log_set_verbosity_thold(verbosity);
}

// ---------------------------------------------------------------------------------------
// The runtime: a loaded model and context (src/runtime/actual.rs).
// ---------------------------------------------------------------------------------------

// Declared in llama.cpp's src/llama-model.h ("for internal test use"); declared here
// rather than including that header, which pulls in most of llama.cpp's internals.
const std::vector<std::pair<std::string, ggml_tensor *>> & llama_internal_get_tensor_map(const llama_model * model);

extern "C" int32_t strix_context_memory(
    const llama_context * ctx,
    strix_buft_mem * out,
    size_t out_cap,
    size_t * n_out,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (ctx == nullptr || n_out == nullptr || (out == nullptr && out_cap > 0)) {
        copy_str(err, err_cap, "null argument");
        return STRIX_ERR_INVALID_ARGUMENT;
    }
    *n_out = 0;
    return guarded(err, err_cap, [&]() -> int32_t {
        const llama_model * model = llama_get_model(ctx);
        const llama_memory_breakdown mb = llama_get_memory_breakdown(ctx);
        const int32_t nd = model ? llama_model_n_devices(model) : 0;
        size_t n = 0;
        for (const auto & [buft, data] : mb) {
            if (data.model == 0 && data.context == 0 && data.compute == 0) {
                continue;
            }
            if (n < out_cap) {
                strix_buft_mem & o = out[n];
                std::memset(&o, 0, sizeof(o));
                copy_str(o.buft, sizeof(o.buft), buft ? ggml_backend_buft_name(buft) : "");
                ggml_backend_dev_t dev = buft ? ggml_backend_buft_get_device(buft) : nullptr;
                copy_str(o.device, sizeof(o.device), dev ? ggml_backend_dev_name(dev) : "");
                copy_str(o.description, sizeof(o.description), dev ? ggml_backend_dev_description(dev) : "");
                o.is_host = buft != nullptr && ggml_backend_buft_is_host(buft);
                o.is_cpu_device = dev != nullptr && ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU;
                o.model_device = -1;
                for (int32_t i = 0; dev != nullptr && i < nd; ++i) {
                    if (llama_model_get_device(model, i) == dev) {
                        o.model_device = i;
                        break;
                    }
                }
                o.model = data.model;
                o.context = data.context;
                o.compute = data.compute;
            }
            ++n;
        }
        *n_out = n;
        return STRIX_OK;
    }, [&] { *n_out = 0; });
}

extern "C" int32_t strix_model_tensor_bufts(
    const llama_model * model,
    strix_tensor_buft * out,
    size_t out_cap,
    size_t * n_out,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (model == nullptr || n_out == nullptr || (out == nullptr && out_cap > 0)) {
        copy_str(err, err_cap, "null argument");
        return STRIX_ERR_INVALID_ARGUMENT;
    }
    *n_out = 0;
    return guarded(err, err_cap, [&]() -> int32_t {
        const auto & tensors = llama_internal_get_tensor_map(model);
        for (size_t i = 0; i < tensors.size() && i < out_cap; ++i) {
            const ggml_tensor * t = tensors[i].second;
            strix_tensor_buft & o = out[i];
            std::memset(&o, 0, sizeof(o));
            copy_str(o.name, sizeof(o.name), tensors[i].first.c_str());
            ggml_backend_buffer_type_t buft =
                (t != nullptr && t->buffer != nullptr) ? ggml_backend_buffer_get_type(t->buffer) : nullptr;
            copy_str(o.buft, sizeof(o.buft), buft ? ggml_backend_buft_name(buft) : "");
            o.bytes = t ? ggml_nbytes(t) : 0;
        }
        *n_out = tensors.size();
        return STRIX_OK;
    }, [&] { *n_out = 0; });
}

extern "C" int32_t strix_reference_greedy(
    const char * model_path,
    const strix_ref_params * p,
    const char * prompt,
    int32_t n_predict,
    int32_t * prompt_tokens,
    size_t prompt_cap,
    size_t * n_prompt,
    int32_t * out,
    size_t out_cap,
    size_t * n_out,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (model_path == nullptr || p == nullptr || prompt == nullptr || n_prompt == nullptr || n_out == nullptr ||
        (prompt_tokens == nullptr && prompt_cap > 0) || (out == nullptr && out_cap > 0)) {
        copy_str(err, err_cap, "null argument");
        return STRIX_ERR_INVALID_ARGUMENT;
    }
    *n_prompt = 0;
    *n_out = 0;
    llama_model * model = nullptr;
    llama_context * ctx = nullptr;
    llama_sampler * smpl = nullptr;
    auto cleanup = [&]() {
        if (smpl) llama_sampler_free(smpl);
        if (ctx) llama_free(ctx);
        if (model) llama_model_free(model);
        smpl = nullptr;
        ctx = nullptr;
        model = nullptr;
    };
    return guarded(err, err_cap, [&]() -> int32_t {
        // model (simple.cpp: llama_model_default_params + n_gpu_layers)
        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers = p->n_gpu_layers;
        mp.load_mode = p->use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
        model = llama_model_load_from_file(model_path, mp);
        if (model == nullptr) {
            throw std::runtime_error("unable to load model");
        }
        const llama_vocab * vocab = llama_model_get_vocab(model);

        // tokenize the prompt: first the count, then the tokens
        const int32_t len = static_cast<int32_t>(std::strlen(prompt));
        const int32_t n_tok = -llama_tokenize(vocab, prompt, len, nullptr, 0, true, true);
        if (n_tok <= 0) {
            throw std::runtime_error("failed to tokenize the prompt");
        }
        std::vector<llama_token> tokens(n_tok);
        if (llama_tokenize(vocab, prompt, len, tokens.data(), n_tok, true, true) < 0) {
            throw std::runtime_error("failed to tokenize the prompt");
        }
        *n_prompt = tokens.size();
        for (size_t i = 0; i < tokens.size() && i < prompt_cap; ++i) {
            prompt_tokens[i] = tokens[i];
        }

        // context
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = p->n_ctx;
        cp.n_batch = p->n_batch;
        cp.n_ubatch = p->n_ubatch;
        cp.n_threads = p->n_threads;
        cp.n_threads_batch = p->n_threads_batch;
        cp.flash_attn_type = static_cast<llama_flash_attn_type>(p->flash_attn);
        cp.type_k = static_cast<ggml_type>(p->type_k);
        cp.type_v = static_cast<ggml_type>(p->type_v);
        cp.offload_kqv = p->offload_kqv;
        cp.swa_full = p->swa_full;
        cp.no_perf = false;
        ctx = llama_init_from_model(model, cp);
        if (ctx == nullptr) {
            throw std::runtime_error("failed to create the llama_context");
        }

        // sampler: a chain with greedy only
        llama_sampler_chain_params sp = llama_sampler_chain_default_params();
        sp.no_perf = false;
        smpl = llama_sampler_chain_init(sp);
        llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

        // the decode loop
        std::vector<llama_token> generated;
        llama_batch batch = llama_batch_get_one(tokens.data(), static_cast<int32_t>(tokens.size()));
        llama_token new_token = 0;
        while (static_cast<int32_t>(generated.size()) < n_predict) {
            if (llama_decode(ctx, batch) != 0) {
                throw std::runtime_error("llama_decode failed");
            }
            new_token = llama_sampler_sample(smpl, ctx, -1);
            if (llama_vocab_is_eog(vocab, new_token)) {
                break;
            }
            generated.push_back(new_token);
            batch = llama_batch_get_one(&new_token, 1);
        }
        *n_out = generated.size();
        for (size_t i = 0; i < generated.size() && i < out_cap; ++i) {
            out[i] = generated[i];
        }
        cleanup();
        return STRIX_OK;
    }, [&] { cleanup(); });
}

// ---------------------------------------------------------------------------------------
// The chat layer (common/chat.h) and common_sampler (common/sampling.h).
// ---------------------------------------------------------------------------------------

struct strix_chat_templates {
    common_chat_templates_ptr tmpls;
    bool use_jinja = true;
};

struct strix_chat_parser {
    common_chat_parser_params params;
};

struct strix_sampler {
    common_sampler * smpl = nullptr;
    const llama_model * model = nullptr;
    std::set<llama_token> preserved;
};

namespace {

// A malloc'd copy of `s`, for the caller to free with strix_string_free.
char * dup_string(const std::string & s) {
    char * out = static_cast<char *>(std::malloc(s.size() + 1));
    if (out == nullptr) {
        throw std::bad_alloc();
    }
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
    return out;
}

// Runs `body` (which returns a malloc'd string); a C++ exception gives NULL and its
// message in `err`.
template <typename Body>
char * guarded_string(char * err, size_t err_cap, Body && body) {
    copy_str(err, err_cap, "");
    try {
        return dup_string(body());
    } catch (const std::exception & e) {
        copy_str(err, err_cap, e.what());
    } catch (...) {
        copy_str(err, err_cap, "unknown C++ exception");
    }
    return nullptr;
}

common_json parse_object(const char * text, const char * what) {
    if (text == nullptr) {
        throw std::invalid_argument(std::string(what) + " is NULL");
    }
    common_json j;
    try {
        j = common_json::parse(text);
    } catch (const std::exception & e) {
        throw std::invalid_argument(std::string(what) + " is not valid JSON: " + e.what());
    }
    if (!j.is_object()) {
        throw std::invalid_argument(std::string(what) + " is not a JSON object");
    }
    return j;
}

bool has(const common_json & j, const char * key) {
    return j.contains(key) && !j.at(key).is_null();
}

// j[key] as T, `def` when missing or null; a value of another type names the key.
template <typename T>
T get_or(const common_json & j, const char * key, T def) {
    if (!has(j, key)) {
        return def;
    }
    try {
        return j.at(key).get<T>();
    } catch (const std::exception & e) {
        throw std::invalid_argument(std::string("\"") + key + "\" has the wrong type: " + e.what());
    }
}

std::string get_string(const common_json & j, const char * key) {
    if (has(j, key) && !j.at(key).is_string()) {
        throw std::invalid_argument(std::string("\"") + key + "\" must be a string");
    }
    return get_or<std::string>(j, key, std::string());
}

bool get_bool(const common_json & j, const char * key, bool def) {
    if (has(j, key) && !j.at(key).is_boolean()) {
        throw std::invalid_argument(std::string("\"") + key + "\" must be true or false");
    }
    return get_or<bool>(j, key, def);
}

std::vector<std::string> get_strings(const common_json & j, const char * key) {
    std::vector<std::string> out;
    if (!has(j, key)) {
        return out;
    }
    const common_json & arr = j.at(key);
    if (!arr.is_array()) {
        throw std::invalid_argument(std::string("\"") + key + "\" must be an array of strings");
    }
    for (size_t i = 0; i < arr.size(); ++i) {
        if (!arr.at(i).is_string()) {
            throw std::invalid_argument(std::string("\"") + key + "\" must be an array of strings");
        }
        out.push_back(arr.at(i).get<std::string>());
    }
    return out;
}

common_chat_format get_format(const common_json & j) {
    const long long f = get_or<long long>(j, "format", 0);
    if (f < 0 || f >= COMMON_CHAT_FORMAT_COUNT) {
        throw std::invalid_argument("\"format\" " + std::to_string(f) + " is not a common_chat_format");
    }
    return static_cast<common_chat_format>(f);
}

common_json strings_json(const std::vector<std::string> & v) {
    common_json arr = common_json::array();
    for (const auto & s : v) {
        arr.push_back(s);
    }
    return arr;
}

common_json triggers_json(const std::vector<common_grammar_trigger> & triggers) {
    common_json arr = common_json::array();
    for (const auto & t : triggers) {
        common_json o = common_json::object();
        o["type"] = static_cast<int>(t.type);
        o["value"] = t.value;
        o["token"] = static_cast<int>(t.token);
        arr.push_back(o);
    }
    return arr;
}

std::string msg_json(const common_chat_msg & msg) {
    common_json out = common_json::object();
    out["content"] = msg.content;
    out["reasoning_content"] = msg.reasoning_content;
    common_json calls = common_json::array();
    for (const auto & tc : msg.tool_calls) {
        common_json c = common_json::object();
        c["id"] = tc.id;
        c["name"] = tc.name;
        c["arguments"] = tc.arguments;
        calls.push_back(c);
    }
    out["tool_calls"] = calls;
    return out.dump_safe();
}

common_chat_parser_params parser_params_from(const common_json & j) {
    common_chat_parser_params pp;
    pp.format = get_format(j);
    pp.generation_prompt = get_string(j, "generation_prompt");
    // llama-server's default reasoning format; the PEG parser decides by itself what
    // reasoning it extracts (chosen when the template was applied).
    pp.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
    pp.parse_tool_calls = true;
    const std::string parser = get_string(j, "parser");
    if (!parser.empty()) {
        try {
            pp.parser.load(parser);
        } catch (const std::exception & e) {
            throw std::invalid_argument(std::string("\"parser\" is not a serialised PEG parser: ") + e.what());
        }
    }
    return pp;
}

// Whether `name` is one of llama.cpp's built-in (non-Jinja) template names.
bool is_builtin_template(const std::string & name) {
    const int32_t n = llama_chat_builtin_templates(nullptr, 0);
    if (n <= 0) {
        return false;
    }
    std::vector<const char *> names(static_cast<size_t>(n));
    llama_chat_builtin_templates(names.data(), names.size());
    for (const char * b : names) {
        if (b != nullptr && name == b) {
            return true;
        }
    }
    return false;
}

std::vector<llama_token> tokenize_special(const llama_vocab * vocab, const std::string & text) {
    return common_tokenize(vocab, text, /* add_special= */ false, /* parse_special= */ true);
}

}  // namespace

extern "C" void strix_string_free(char * s) {
    std::free(s);
}

extern "C" strix_chat_templates * strix_chat_templates_init(
    const llama_model * model,
    const char * chat_template_override,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    const std::string override_src = chat_template_override ? chat_template_override : "";
    if (model == nullptr && override_src.empty()) {
        copy_str(err, err_cap, "null model and no template");
        return nullptr;
    }
    try {
        auto out = std::make_unique<strix_chat_templates>();
        // "chatml" is llama.cpp's ChatML Jinja (common_chat_templates_init maps it); other
        // built-in names only work through llama_chat_apply_template.
        out->use_jinja = override_src.empty() || override_src == "chatml" || !is_builtin_template(override_src);
        out->tmpls = common_chat_templates_init(model, override_src);
        if (!out->tmpls) {
            throw std::runtime_error("common_chat_templates_init returned nothing");
        }
        return out.release();
    } catch (const std::exception & e) {
        copy_str(err, err_cap, e.what());
    } catch (...) {
        copy_str(err, err_cap, "unknown C++ exception");
    }
    return nullptr;
}

extern "C" void strix_chat_templates_free(strix_chat_templates * tmpls) {
    delete tmpls;
}

extern "C" char * strix_chat_templates_info(const strix_chat_templates * t, char * err, size_t err_cap) {
    return guarded_string(err, err_cap, [&]() -> std::string {
        if (t == nullptr) {
            throw std::invalid_argument("null templates");
        }
        common_json out = common_json::object();
        out["source"] = common_chat_templates_source(t->tmpls.get());
        out["tool_use_source"] = common_chat_templates_source(t->tmpls.get(), "tool_use");
        out["explicit"] = common_chat_templates_was_explicit(t->tmpls.get());
        out["use_jinja"] = t->use_jinja;
        common_json caps = common_json::object();
        bool thinking = false;
        if (t->use_jinja) {
            for (const auto & [name, value] : common_chat_templates_get_caps(t->tmpls.get())) {
                caps[name] = value;
            }
            try {
                thinking = common_chat_templates_support_enable_thinking(t->tmpls.get());
            } catch (const std::exception &) {
                thinking = false;  // the probe conversation does not render: no thinking
            }
        }
        out["caps"] = caps;
        out["supports_thinking"] = thinking;
        return out.dump_safe();
    });
}

extern "C" char * strix_chat_apply(
    const strix_chat_templates * t,
    const char * request_json,
    char * err,
    size_t err_cap) {
    return guarded_string(err, err_cap, [&]() -> std::string {
        if (t == nullptr) {
            throw std::invalid_argument("null templates");
        }
        const common_json req = parse_object(request_json, "the request");
        if (!req.contains("messages")) {
            throw std::invalid_argument("\"messages\" is required");
        }

        common_chat_templates_inputs inputs;
        inputs.use_jinja = t->use_jinja;
        inputs.messages = common_chat_msgs_parse_oaicompat(req.at("messages"));
        if (has(req, "tools")) {
            const common_json & tools = req.at("tools");
            if (!tools.is_array()) {
                throw std::invalid_argument("\"tools\" must be an array");
            }
            inputs.tools = common_chat_tools_parse_oaicompat(tools);
        }
        if (has(req, "tool_choice")) {
            if (!req.at("tool_choice").is_string()) {
                throw std::invalid_argument("\"tool_choice\" must be \"auto\", \"none\" or \"required\"");
            }
            inputs.tool_choice = common_chat_tool_choice_parse_oaicompat(req.at("tool_choice").get<std::string>());
        }
        inputs.parallel_tool_calls = get_bool(req, "parallel_tool_calls", false);
        inputs.add_generation_prompt = get_bool(req, "add_generation_prompt", true);
        inputs.enable_thinking = get_bool(req, "enable_thinking", true);
        inputs.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;  // llama-server's default
        if (has(req, "reasoning_format")) {
            inputs.reasoning_format = common_reasoning_format_from_name(get_string(req, "reasoning_format"));
        }
        const std::string grammar = get_string(req, "grammar");
        if (has(req, "json_schema")) {
            if (!grammar.empty()) {
                throw std::invalid_argument("Cannot use both json_schema and grammar");
            }
            inputs.json_schema = req.at("json_schema").dump();
        }
        if (!inputs.tools.empty() && inputs.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE && !grammar.empty()) {
            throw std::invalid_argument("Cannot use custom grammar constraints with tools.");
        }
        inputs.grammar = grammar;

        const common_chat_params p = common_chat_templates_apply(t->tmpls.get(), inputs);

        common_json out = common_json::object();
        out["prompt"] = p.prompt;
        // As llama-server: the template's grammar is sent with grammar_type "tool_calls";
        // without one, the request's own grammar goes to the sampler as the user's.
        if (!p.grammar.empty()) {
            out["grammar"] = p.grammar;
            out["grammar_type"] = "tool_calls";
        } else if (!grammar.empty()) {
            out["grammar"] = grammar;
            out["grammar_type"] = "user";
        } else {
            out["grammar"] = "";
        }
        out["grammar_lazy"] = p.grammar_lazy;
        out["grammar_triggers"] = triggers_json(p.grammar_triggers);
        out["preserved_tokens"] = strings_json(p.preserved_tokens);
        out["additional_stops"] = strings_json(p.additional_stops);
        out["format"] = static_cast<int>(p.format);
        out["format_name"] = common_chat_format_name(p.format);
        out["parser"] = p.parser;
        out["generation_prompt"] = p.generation_prompt;
        out["supports_thinking"] = p.supports_thinking;
        out["thinking_start_tag"] = p.thinking_start_tag;
        out["thinking_end_tags"] = strings_json(p.thinking_end_tags);
        return out.dump_safe();
    });
}

extern "C" char * strix_chat_parse(const char * parse_json, char * err, size_t err_cap) {
    return guarded_string(err, err_cap, [&]() -> std::string {
        const common_json j = parse_object(parse_json, "the parse request");
        const common_chat_parser_params pp = parser_params_from(j);
        const std::string text = get_string(j, "text");
        const bool is_partial = get_bool(j, "is_partial", false);
        return msg_json(common_chat_parse(text, is_partial, pp));
    });
}

extern "C" strix_chat_parser * strix_chat_parser_init(const char * parser_json, char * err, size_t err_cap) {
    copy_str(err, err_cap, "");
    try {
        const common_json j = parse_object(parser_json, "the parser parameters");
        auto out = std::make_unique<strix_chat_parser>();
        out->params = parser_params_from(j);
        return out.release();
    } catch (const std::exception & e) {
        copy_str(err, err_cap, e.what());
    } catch (...) {
        copy_str(err, err_cap, "unknown C++ exception");
    }
    return nullptr;
}

extern "C" char * strix_chat_parser_parse(
    const strix_chat_parser * parser,
    const char * text,
    size_t len,
    bool is_partial,
    char * err,
    size_t err_cap) {
    return guarded_string(err, err_cap, [&]() -> std::string {
        if (parser == nullptr || (text == nullptr && len > 0)) {
            throw std::invalid_argument("null argument");
        }
        const std::string input = len > 0 ? std::string(text, len) : std::string();
        return msg_json(common_chat_parse(input, is_partial, parser->params));
    });
}

extern "C" void strix_chat_parser_free(strix_chat_parser * parser) {
    delete parser;
}

extern "C" char * strix_json_schema_to_grammar(const char * schema_json, char * err, size_t err_cap) {
    return guarded_string(err, err_cap, [&]() -> std::string {
        if (schema_json == nullptr) {
            throw std::invalid_argument("null schema");
        }
        common_json schema;
        try {
            schema = common_json::parse(schema_json);
        } catch (const std::exception & e) {
            throw std::invalid_argument(std::string("the schema is not valid JSON: ") + e.what());
        }
        return json_schema_to_grammar(schema);
    });
}

extern "C" strix_sampler * strix_sampler_init(
    const llama_model * model,
    const char * params_json,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (model == nullptr) {
        copy_str(err, err_cap, "null model");
        return nullptr;
    }
    try {
        const common_json j = parse_object(params_json, "the sampler parameters");
        const llama_vocab * vocab = llama_model_get_vocab(model);
        const int32_t n_vocab = llama_vocab_n_tokens(vocab);

        common_params_sampling sp;
        sp.temp = get_or<float>(j, "temperature", sp.temp);
        sp.top_k = get_or<int>(j, "top_k", sp.top_k);
        sp.top_p = get_or<float>(j, "top_p", sp.top_p);
        sp.min_p = get_or<float>(j, "min_p", sp.min_p);
        const long long seed = get_or<long long>(j, "seed", static_cast<long long>(sp.seed));
        if (seed < 0 || seed > 0xFFFFFFFFLL) {
            throw std::invalid_argument("\"seed\" must fit in 32 bits");
        }
        sp.seed = static_cast<uint32_t>(seed);
        sp.penalty_repeat = get_or<float>(j, "repeat_penalty", sp.penalty_repeat);
        sp.penalty_last_n = get_or<int>(j, "repeat_last_n", sp.penalty_last_n);
        if (sp.penalty_last_n < -1) {
            throw std::invalid_argument("\"repeat_last_n\" must be >= -1");
        }
        if (sp.penalty_last_n == -1) {
            // llama-server: the slot's context; the sampler has no context, so the most
            // a context of this model can hold.
            sp.penalty_last_n = llama_model_n_ctx_train(model);
        }

        // As params_from_json_cmpl: preserved tokens by id when they are one token.
        std::set<llama_token> preserved;
        for (const auto & text : get_strings(j, "preserved_tokens")) {
            const auto ids = tokenize_special(vocab, text);
            if (ids.size() == 1) {
                preserved.insert(ids[0]);
            }
        }
        sp.preserved_tokens = preserved;

        if (has(j, "grammar_triggers")) {
            const common_json & arr = j.at("grammar_triggers");
            if (!arr.is_array()) {
                throw std::invalid_argument("\"grammar_triggers\" must be an array");
            }
            for (size_t i = 0; i < arr.size(); ++i) {
                const common_json & t = arr.at(i);
                if (!t.is_object()) {
                    throw std::invalid_argument("a grammar trigger must be an object");
                }
                const long long type = get_or<long long>(t, "type", -1);
                const std::string value = get_string(t, "value");
                if (type == COMMON_GRAMMAR_TRIGGER_TYPE_WORD) {
                    const auto ids = tokenize_special(vocab, value);
                    if (ids.size() == 1) {
                        if (preserved.count(ids[0]) == 0) {
                            throw std::invalid_argument("Grammar trigger word should be marked as preserved token: " + value);
                        }
                        common_grammar_trigger trigger;
                        trigger.type = COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN;
                        trigger.value = value;
                        trigger.token = ids[0];
                        sp.grammar_triggers.push_back(std::move(trigger));
                    } else {
                        sp.grammar_triggers.push_back({COMMON_GRAMMAR_TRIGGER_TYPE_WORD, value});
                    }
                } else if (type == COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN || type == COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL) {
                    sp.grammar_triggers.push_back({static_cast<common_grammar_trigger_type>(type), value});
                } else if (type == COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN) {
                    const long long token = get_or<long long>(t, "token", -1);
                    if (token < 0 || token >= n_vocab) {
                        throw std::invalid_argument("a token grammar trigger needs a token id of the vocabulary");
                    }
                    common_grammar_trigger trigger;
                    trigger.type = COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN;
                    trigger.value = value;
                    trigger.token = static_cast<llama_token>(token);
                    sp.grammar_triggers.push_back(std::move(trigger));
                } else {
                    throw std::invalid_argument("Unknown grammar trigger type " + std::to_string(type));
                }
            }
        }

        const std::string grammar = get_string(j, "grammar");
        if (!grammar.empty()) {
            const std::string type = has(j, "grammar_type") ? get_string(j, "grammar_type") : "tool_calls";
            common_grammar_type gt;
            if (type == "tool_calls") {
                gt = COMMON_GRAMMAR_TYPE_TOOL_CALLS;
            } else if (type == "output_format") {
                gt = COMMON_GRAMMAR_TYPE_OUTPUT_FORMAT;
            } else if (type == "user") {
                gt = COMMON_GRAMMAR_TYPE_USER;
            } else {
                throw std::invalid_argument("\"grammar_type\" must be \"tool_calls\", \"output_format\" or \"user\"");
            }
            sp.grammar = common_grammar(gt, grammar);
        }
        sp.grammar_lazy = get_bool(j, "grammar_lazy", false);
        if (sp.grammar_lazy && !grammar.empty() && sp.grammar_triggers.empty()) {
            throw std::invalid_argument("Error: no triggers set for lazy grammar!");
        }
        sp.generation_prompt = get_string(j, "generation_prompt");

        auto out = std::make_unique<strix_sampler>();
        out->model = model;
        out->preserved = preserved;
        out->smpl = common_sampler_init(model, sp);
        if (out->smpl == nullptr) {
            throw std::runtime_error("common_sampler_init failed");
        }
        return out.release();
    } catch (const std::exception & e) {
        copy_str(err, err_cap, e.what());
    } catch (...) {
        copy_str(err, err_cap, "unknown C++ exception");
    }
    return nullptr;
}

extern "C" int32_t strix_sampler_sample(
    strix_sampler * s,
    llama_context * ctx,
    int32_t idx,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (s == nullptr || s->smpl == nullptr || ctx == nullptr) {
        copy_str(err, err_cap, "null argument");
        return -1;
    }
    try {
        if (llama_get_model(ctx) != s->model) {
            throw std::invalid_argument("the context belongs to another model than the sampler");
        }
        // common_sampler_sample asserts (aborts) where there are no logits: ask first.
        if (llama_get_logits_ith(ctx, idx) == nullptr) {
            throw std::invalid_argument("no logits at batch index " + std::to_string(idx) +
                                        " of the last decode");
        }
        const llama_token id = common_sampler_sample(s->smpl, ctx, idx);
        if (id < 0) {
            throw std::runtime_error("common_sampler_sample gave no token");
        }
        common_sampler_accept(s->smpl, id, true);
        return id;
    } catch (const std::exception & e) {
        copy_str(err, err_cap, e.what());
    } catch (...) {
        copy_str(err, err_cap, "unknown C++ exception");
    }
    return -1;
}

extern "C" int32_t strix_sampler_accept(
    strix_sampler * s,
    const int32_t * tokens,
    size_t n,
    char * err,
    size_t err_cap) {
    copy_str(err, err_cap, "");
    if (s == nullptr || s->smpl == nullptr || (tokens == nullptr && n > 0)) {
        copy_str(err, err_cap, "null argument");
        return STRIX_ERR_INVALID_ARGUMENT;
    }
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(s->model));
    for (size_t i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            copy_str(err, err_cap, ("token " + std::to_string(tokens[i]) + " is not in the vocabulary").c_str());
            return STRIX_ERR_INVALID_ARGUMENT;
        }
    }
    return guarded(err, err_cap, [&]() -> int32_t {
        for (size_t i = 0; i < n; ++i) {
            common_sampler_accept(s->smpl, tokens[i], /* is_generated= */ false);
        }
        return STRIX_OK;
    }, [] {});
}

extern "C" int32_t strix_sampler_is_preserved(const strix_sampler * s, int32_t token) {
    return (s != nullptr && s->preserved.count(token) > 0) ? 1 : 0;
}

extern "C" void strix_sampler_free(strix_sampler * s) {
    if (s == nullptr) {
        return;
    }
    common_sampler_free(s->smpl);
    delete s;
}
