// strix_shim.cpp: see strix_shim.h for the API and why each function exists.
//
// Compiled by build.rs (crate `cc`, C++17) against the llama.cpp sources bundled in
// llama-cpp-sys-2; links against the `llama-common` static library and the
// `llama_cpp_sys_2_common_wrapper` library that llama-cpp-sys-2 already builds.

#include "strix_shim.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "fit.h"
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
