//! The operating system and kernel version, which decide how GPU memory is allocated.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The operating system. Allocation behaviour differs sharply between Linux and
/// Windows on the same Strix Halo box (seed repo thebeedubya/autoresearch, measured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// Linux (amdgpu/KFD, Mesa RADV).
    Linux,
    /// Windows (AMD Adrenalin driver, HIP SDK).
    Windows,
    /// macOS.
    MacOs,
    /// Anything else.
    Other,
}

impl Os {
    /// The OS this program was compiled for.
    pub fn host() -> Os {
        if cfg!(target_os = "linux") {
            Os::Linux
        } else if cfg!(windows) {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::MacOs
        } else {
            Os::Other
        }
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
            Os::MacOs => "macos",
            Os::Other => "other",
        })
    }
}

/// An OS name that is not linux, windows, macos or other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OS `{0}`; use linux, windows, macos or other")]
pub struct OsParseError(pub String);

impl FromStr for Os {
    type Err = OsParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "linux" => Ok(Os::Linux),
            "windows" | "win" => Ok(Os::Windows),
            "macos" | "mac" | "darwin" => Ok(Os::MacOs),
            "other" => Ok(Os::Other),
            _ => Err(OsParseError(s.to_string())),
        }
    }
}

/// A Linux kernel version. Kernel 6.18.4 fixes KFD memory limits for ROCm on
/// RDNA 3.5 APUs (AMD rocm-docs rdna3-5 page, claim).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KernelVersion {
    /// e.g. 6
    pub major: u32,
    /// e.g. 18
    pub minor: u32,
    /// e.g. 4 (0 when the release string has none)
    pub patch: u32,
}

impl KernelVersion {
    /// A version from its three numbers.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A kernel release string without a leading "MAJOR.MINOR".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a kernel version; write MAJOR.MINOR[.PATCH], e.g. 6.18.4")]
pub struct KernelParseError(pub String);

impl FromStr for KernelVersion {
    type Err = KernelParseError;

    /// Reads "6.18.4-arch1-1", "6.8.0-51-generic", "6.18-rc1" or "6.18.4".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || KernelParseError(s.to_string());
        let text = s.trim();
        let numeric_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let mut parts = text[..numeric_end].split('.');
        let mut next = |required: bool| -> Result<u32, KernelParseError> {
            match parts.next() {
                Some(p) if !p.is_empty() => p.parse().map_err(|_| err()),
                None if !required => Ok(0),
                _ => Err(err()),
            }
        };
        let major = next(true)?;
        let minor = next(true)?;
        let patch = next(false)?;
        Ok(KernelVersion::new(major, minor, patch))
    }
}

impl TryFrom<String> for KernelVersion {
    type Error = KernelParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KernelVersion> for String {
    fn from(v: KernelVersion) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_kernel_strings() {
        let cases = [
            ("6.18.4-arch1-1", (6, 18, 4)),
            ("6.8.0-51-generic", (6, 8, 0)),
            ("6.18-rc1", (6, 18, 0)),
            ("6.17.9", (6, 17, 9)),
            (" 6.13.2 \n", (6, 13, 2)),
            ("6.18.4.1-custom", (6, 18, 4)),
        ];
        for (text, (a, b, c)) in cases {
            assert_eq!(
                text.parse::<KernelVersion>(),
                Ok(KernelVersion::new(a, b, c)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_non_versions() {
        for text in ["", "6", "linux-6.1", "6..1", "99999999999.1", "6.x"] {
            assert!(text.parse::<KernelVersion>().is_err(), "{text}");
        }
    }

    #[test]
    fn orders_by_major_minor_patch() {
        let fix = KernelVersion::new(6, 18, 4);
        assert!(KernelVersion::new(6, 18, 3) < fix);
        assert!(KernelVersion::new(6, 17, 99) < fix);
        assert!(KernelVersion::new(7, 0, 0) > fix);
    }

    #[test]
    fn os_names() {
        assert_eq!("Windows".parse::<Os>(), Ok(Os::Windows));
        assert_eq!("darwin".parse::<Os>(), Ok(Os::MacOs));
        assert!("beos".parse::<Os>().is_err());
        assert_eq!(
            serde_json::to_string(&Os::MacOs).ok().as_deref(),
            Some("\"macos\"")
        );
    }
}
