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
#include <vector>

#include "common.h"
#include "fit.h"
#include "ggml-backend.h"
#include "llama.h"
#include "log.h"
#include "wrapper_common.h"  // llama-cpp-sys-2's llama_rs_fit_params

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
    try {
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
    } catch (const std::exception & e) {
        *n_out = 0;
        copy_str(err, err_cap, e.what());
        return STRIX_ERR_EXCEPTION;
    } catch (...) {
        *n_out = 0;
        copy_str(err, err_cap, "unknown C++ exception");
        return STRIX_ERR_EXCEPTION;
    }
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
    try {
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
    } catch (const std::exception & e) {
        copy_str(err, err_cap, e.what());
        return STRIX_ERR_EXCEPTION;
    } catch (...) {
        copy_str(err, err_cap, "unknown C++ exception");
        return STRIX_ERR_EXCEPTION;
    }
}

extern "C" void strix_common_log_set_verbosity(int32_t verbosity) {
    common_log_set_verbosity_thold(verbosity);
}
