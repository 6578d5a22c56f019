//! llama.cpp compute backends and the runtime (ROCm / HIP SDK / CUDA) behind them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A llama.cpp (ggml) compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// CPU only: weights and compute in host RAM.
    Cpu,
    /// ggml-vulkan (Mesa RADV on Linux, the AMD driver on Windows).
    Vulkan,
    /// ggml-hip (ROCm on Linux, HIP SDK on Windows). "rocm" is accepted as a name.
    #[serde(alias = "rocm")]
    Hip,
    /// ggml-cuda (NVIDIA).
    Cuda,
}

impl Backend {
    /// Every backend, in a stable order.
    pub const ALL: [Backend; 4] = [Backend::Cpu, Backend::Vulkan, Backend::Hip, Backend::Cuda];

    /// Whether the backend puts weights on a GPU.
    pub fn is_gpu(self) -> bool {
        self != Backend::Cpu
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Vulkan => "vulkan",
            Backend::Hip => "hip",
            Backend::Cuda => "cuda",
        })
    }
}

/// A backend name we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend `{0}`; use cpu, vulkan, hip (or rocm) or cuda")]
pub struct BackendParseError(pub String);

impl FromStr for Backend {
    type Err = BackendParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Backend::Cpu),
            "vulkan" => Ok(Backend::Vulkan),
            "hip" | "rocm" => Ok(Backend::Hip),
            "cuda" => Ok(Backend::Cuda),
            _ => Err(BackendParseError(s.to_string())),
        }
    }
}

/// A runtime version, MAJOR.MINOR: ROCm 7.2, HIP SDK 7.1, CUDA 12.8. The patch level
/// is dropped: no source distinguishes patch releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RuntimeVersion {
    /// e.g. 7
    pub major: u32,
    /// e.g. 2
    pub minor: u32,
}

impl RuntimeVersion {
    /// A version from its two numbers.
    pub const fn new(major: u32, minor: u32) -> Self {
        RuntimeVersion { major, minor }
    }

    /// Reads the leading MAJOR.MINOR of a release string such as ROCm's
    /// `/opt/rocm/.info/version` ("7.2.0-43"). `None` when it has no such prefix.
    pub fn from_release(text: &str) -> Option<Self> {
        let mut parts = text.trim().split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(RuntimeVersion::new(major, minor))
    }
}

impl fmt::Display for RuntimeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A runtime version that is not MAJOR.MINOR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a runtime version; write MAJOR.MINOR, e.g. 7.2")]
pub struct RuntimeVersionParseError(pub String);

impl FromStr for RuntimeVersion {
    type Err = RuntimeVersionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RuntimeVersionParseError(s.to_string());
        let (major, minor) = s.trim().split_once('.').ok_or_else(err)?;
        let number = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            t.parse::<u32>().map_err(|_| err())
        };
        Ok(RuntimeVersion::new(number(major)?, number(minor)?))
    }
}

impl TryFrom<String> for RuntimeVersion {
    type Error = RuntimeVersionParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RuntimeVersion> for String {
    fn from(v: RuntimeVersion) -> String {
        v.to_string()
    }
}

/// Who built the runtime. It matters for HIP on Windows, where the same hardware and
/// the same GPU target allocate from different pools:
/// llama.cpp compiled with the HIP SDK 7.1 allocates system RAM through hipMalloc,
/// while Ollama's bundled ROCm 6 allocates only from the BIOS carveout
/// (seed repo thebeedubya/autoresearch README "Phase 3" and state.md, measured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeFlavor {
    /// llama.cpp built against the vendor SDK (HIP SDK on Windows, ROCm on Linux,
    /// the CUDA toolkit, the Vulkan SDK). What strix-run runs.
    #[default]
    LlamaCpp,
    /// The runtime bundled with Ollama (on Windows: ROCm 6).
    Ollama,
}

impl fmt::Display for RuntimeFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeFlavor::LlamaCpp => "llama-cpp",
            RuntimeFlavor::Ollama => "ollama",
        })
    }
}

/// A flavor name we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown runtime flavor `{0}`; use llama-cpp or ollama")]
pub struct RuntimeFlavorParseError(pub String);

impl FromStr for RuntimeFlavor {
    type Err = RuntimeFlavorParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "llama-cpp" | "llamacpp" | "llama.cpp" | "sdk" => Ok(RuntimeFlavor::LlamaCpp),
            "ollama" => Ok(RuntimeFlavor::Ollama),
            _ => Err(RuntimeFlavorParseError(s.to_string())),
        }
    }
}

/// A backend the user has (or has compiled), with its runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BackendRuntime {
    /// The ggml backend.
    pub backend: Backend,
    /// ROCm / HIP SDK / CUDA version; `None` when unknown (Vulkan and CPU need none).
    #[serde(default)]
    pub version: Option<RuntimeVersion>,
    /// Who built the runtime (matters for HIP on Windows).
    #[serde(default)]
    pub flavor: RuntimeFlavor,
}

impl BackendRuntime {
    /// A llama.cpp backend of unknown version.
    pub const fn new(backend: Backend) -> Self {
        BackendRuntime {
            backend,
            version: None,
            flavor: RuntimeFlavor::LlamaCpp,
        }
    }

    /// A llama.cpp backend of a known version.
    pub const fn versioned(backend: Backend, version: RuntimeVersion) -> Self {
        BackendRuntime {
            backend,
            version: Some(version),
            flavor: RuntimeFlavor::LlamaCpp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip_and_rocm_is_hip() {
        for b in Backend::ALL {
            assert_eq!(b.to_string().parse::<Backend>(), Ok(b));
        }
        assert_eq!("ROCm".parse::<Backend>(), Ok(Backend::Hip));
        assert!("metal".parse::<Backend>().is_err());
        assert_eq!(
            serde_json::to_string(&Backend::Hip).ok().as_deref(),
            Some("\"hip\"")
        );
    }

    #[test]
    fn runtime_versions() {
        assert_eq!(
            "7.2".parse::<RuntimeVersion>(),
            Ok(RuntimeVersion::new(7, 2))
        );
        assert_eq!(
            " 6.4 ".parse::<RuntimeVersion>(),
            Ok(RuntimeVersion::new(6, 4))
        );
        for bad in ["7", "7.", ".2", "7.2.1", "v7.2", "7.x", "+7.2", ""] {
            assert!(bad.parse::<RuntimeVersion>().is_err(), "{bad}");
        }
        assert!(RuntimeVersion::new(6, 4) < RuntimeVersion::new(7, 2));
        assert!(RuntimeVersion::new(7, 10) > RuntimeVersion::new(7, 2));
    }

    #[test]
    fn release_strings() {
        assert_eq!(
            RuntimeVersion::from_release("7.2.0-43\n"),
            Some(RuntimeVersion::new(7, 2))
        );
        assert_eq!(
            RuntimeVersion::from_release("6.4"),
            Some(RuntimeVersion::new(6, 4))
        );
        assert_eq!(RuntimeVersion::from_release("garbage"), None);
    }

    #[test]
    fn runtime_serializes_version_as_text() {
        let rt = BackendRuntime::versioned(Backend::Hip, RuntimeVersion::new(7, 1));
        let json = serde_json::to_string(&rt).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"backend":"hip","version":"7.1","flavor":"llama-cpp"}"#
        );
        let back: Result<BackendRuntime, _> = serde_json::from_str(r#"{"backend":"rocm"}"#);
        assert_eq!(back.ok(), Some(BackendRuntime::new(Backend::Hip)));
        let back: Result<BackendRuntime, _> = serde_json::from_str(r#"{"backend":"metal"}"#);
        assert!(back.is_err());
    }
}
