//! Parsers for the procfs and sysfs files detection reads. Pure functions of the
//! text: every error names the file it came from.

use std::collections::BTreeSet;
use std::path::Path;

use crate::hardware::error::DetectError;

/// Longest excerpt of a bad file quoted in an error.
const QUOTE_LIMIT: usize = 60;

/// A [`DetectError::Garbage`] quoting `found`.
pub(crate) fn garbage(path: &Path, expected: &'static str, found: &str) -> DetectError {
    let found: String = found.trim().chars().take(QUOTE_LIMIT).collect();
    DetectError::Garbage {
        path: path.to_path_buf(),
        expected,
        found,
    }
}

/// A sysfs file holding one decimal number (`mem_info_vram_total`, `pages_limit`).
pub(crate) fn parse_u64(text: &str, path: &Path) -> Result<u64, DetectError> {
    text.trim()
        .parse()
        .map_err(|_| garbage(path, "a decimal number", text))
}

/// A sysfs PCI id file ("0x1002").
pub(crate) fn parse_pci_id(text: &str, path: &Path) -> Result<u16, DetectError> {
    let t = text.trim();
    t.strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .and_then(|hex| u16::from_str_radix(hex, 16).ok())
        .ok_or_else(|| garbage(path, "a PCI id such as 0x1002", text))
}

/// `/proc/meminfo`: MemTotal and MemAvailable, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemInfo {
    /// MemTotal: RAM the kernel manages (the carveout excluded).
    pub total: u64,
    /// MemAvailable (falls back to MemFree on kernels before 3.14).
    pub available: u64,
}

/// Parses `/proc/meminfo` ("MemTotal:  131072000 kB").
pub(crate) fn parse_meminfo(text: &str, path: &Path) -> Result<MemInfo, DetectError> {
    let field = |name: &str| -> Result<Option<u64>, DetectError> {
        let Some(line) = text.lines().find(|l| l.split(':').next() == Some(name)) else {
            return Ok(None);
        };
        let value = line.split_once(':').map_or("", |(_, v)| v).trim();
        let number = value.strip_suffix("kB").unwrap_or(value).trim();
        number
            .parse::<u64>()
            .ok()
            .and_then(|kib| kib.checked_mul(1024))
            .map(Some)
            .ok_or_else(|| garbage(path, "`NAME: <number> kB` lines", line))
    };
    let total = field("MemTotal")?
        .ok_or_else(|| garbage(path, "a MemTotal line", text.lines().next().unwrap_or("")))?;
    let available = match field("MemAvailable")? {
        Some(a) => a,
        None => field("MemFree")?.unwrap_or(total),
    };
    Ok(MemInfo {
        total,
        available: available.min(total),
    })
}

/// What `/proc/cpuinfo` says about the CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CpuCounts {
    /// "model name" of the first processor.
    pub name: Option<String>,
    /// Unique (physical id, core id) pairs, or `None` when the file lacks them.
    pub physical_cores: Option<u32>,
    /// "processor" entries.
    pub logical_threads: u32,
}

/// Parses `/proc/cpuinfo`: threads are "processor" entries, physical cores the
/// unique (physical id, core id) pairs.
pub(crate) fn parse_cpuinfo(text: &str, path: &Path) -> Result<CpuCounts, DetectError> {
    let mut threads: u32 = 0;
    let mut name = None;
    let mut cores = BTreeSet::new();
    let mut missing_ids = false;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let get = |key: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim())
            })
        };
        if get("processor").is_none() {
            continue;
        }
        threads = threads.saturating_add(1);
        if name.is_none() {
            name = get("model name").map(str::to_string);
        }
        match (get("physical id"), get("core id")) {
            (Some(p), Some(c)) => {
                cores.insert((p.to_string(), c.to_string()));
            }
            _ => missing_ids = true,
        }
    }
    if threads == 0 {
        return Err(garbage(
            path,
            "`processor : N` entries",
            text.lines().next().unwrap_or(""),
        ));
    }
    let physical_cores = if missing_ids {
        None
    } else {
        u32::try_from(cores.len()).ok()
    };
    Ok(CpuCounts {
        name,
        physical_cores,
        logical_threads: threads,
    })
}

/// The memory settings on the kernel command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CmdlineMemory {
    /// `ttm.pages_limit=N` (4 KiB pages).
    pub ttm_pages_limit: Option<u64>,
    /// `amdgpu.gttsize=N` in MiB (deprecated since ~6.17; -1 = default).
    pub amdgpu_gttsize_mib: Option<i64>,
}

/// Parses `/proc/cmdline` for `ttm.pages_limit=` and `amdgpu.gttsize=`.
pub(crate) fn parse_cmdline(text: &str, path: &Path) -> Result<CmdlineMemory, DetectError> {
    let mut out = CmdlineMemory::default();
    for token in text.split_whitespace() {
        if let Some(v) = token.strip_prefix("ttm.pages_limit=") {
            let pages = v
                .parse()
                .map_err(|_| garbage(path, "ttm.pages_limit=<pages>", token))?;
            out.ttm_pages_limit = Some(pages);
        } else if let Some(v) = token.strip_prefix("amdgpu.gttsize=") {
            let mib = v
                .parse()
                .map_err(|_| garbage(path, "amdgpu.gttsize=<MiB>", token))?;
            out.amdgpu_gttsize_mib = Some(mib);
        }
    }
    Ok(out)
}

/// Parses a modprobe.d file for `options ttm pages_limit=N` (what `amd-ttm --set`
/// writes to /etc/modprobe.d/ttm.conf).
pub(crate) fn parse_modprobe_ttm(text: &str, path: &Path) -> Result<Option<u64>, DetectError> {
    let mut found = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("options") || words.next() != Some("ttm") {
            continue;
        }
        for word in words {
            if let Some(v) = word.strip_prefix("pages_limit=") {
                let pages = v
                    .parse()
                    .map_err(|_| garbage(path, "options ttm pages_limit=<pages>", line))?;
                found = Some(pages);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/proc/x")
    }

    #[test]
    fn meminfo() {
        let text =
            "MemTotal:       131072000 kB\nMemFree:  1000 kB\nMemAvailable:   120000000 kB\n";
        let m = parse_meminfo(text, p());
        assert_eq!(
            m.ok(),
            Some(MemInfo {
                total: 134_217_728_000,
                available: 122_880_000_000
            })
        );
        let old_kernel = "MemTotal: 2048 kB\nMemFree: 1024 kB\n";
        assert_eq!(
            parse_meminfo(old_kernel, p()).ok().map(|m| m.available),
            Some(1_048_576)
        );
        assert!(parse_meminfo("MemFree: 1 kB\n", p()).is_err());
        assert!(parse_meminfo("MemTotal: lots kB\n", p()).is_err());
        assert!(parse_meminfo("MemTotal: 99999999999999999999 kB\n", p()).is_err());
    }

    #[test]
    fn cpuinfo_counts_unique_cores() {
        let mut text = String::new();
        for cpu in 0..8 {
            text += &format!(
                "processor\t: {cpu}\nmodel name\t: Test CPU\nphysical id\t: 0\ncore id\t\t: {}\n\n",
                cpu % 4
            );
        }
        let c = parse_cpuinfo(&text, p()).ok();
        assert_eq!(
            c.as_ref().map(|c| (c.physical_cores, c.logical_threads)),
            Some((Some(4), 8))
        );
        assert_eq!(c.and_then(|c| c.name).as_deref(), Some("Test CPU"));
        let arm = "processor : 0\nBogoMIPS : 50\n\nprocessor : 1\nBogoMIPS : 50\n";
        assert_eq!(
            parse_cpuinfo(arm, p()).ok().map(|c| c.physical_cores),
            Some(None)
        );
        assert!(parse_cpuinfo("hello\n", p()).is_err());
    }

    #[test]
    fn cmdline() {
        let c = parse_cmdline(
            "BOOT_IMAGE=/vmlinuz ro ttm.pages_limit=30146560 amdgpu.gttsize=117760\n",
            p(),
        );
        assert_eq!(
            c.ok(),
            Some(CmdlineMemory {
                ttm_pages_limit: Some(30_146_560),
                amdgpu_gttsize_mib: Some(117_760)
            })
        );
        assert_eq!(
            parse_cmdline("quiet amdgpu.gttsize=-1", p())
                .ok()
                .and_then(|c| c.amdgpu_gttsize_mib),
            Some(-1)
        );
        let err = parse_cmdline("ttm.pages_limit=lots", p())
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("/proc/x") && e.contains("lots")));
    }

    #[test]
    fn modprobe() {
        let text = "# written by amd-ttm\noptions ttm pages_limit=26214400\noptions amdgpu foo=1\n";
        assert_eq!(parse_modprobe_ttm(text, p()).ok(), Some(Some(26_214_400)));
        assert_eq!(
            parse_modprobe_ttm("blacklist nouveau\n", p()).ok(),
            Some(None)
        );
        assert!(parse_modprobe_ttm("options ttm pages_limit=x\n", p()).is_err());
    }

    #[test]
    fn ids_and_numbers() {
        assert_eq!(parse_pci_id("0x1002\n", p()).ok(), Some(0x1002));
        assert_eq!(parse_pci_id("0x10DE", p()).ok(), Some(0x10de));
        assert!(parse_pci_id("1002", p()).is_err());
        assert!(parse_pci_id("0x123456", p()).is_err());
        assert_eq!(parse_u64(" 536870912\n", p()).ok(), Some(536_870_912));
        assert!(parse_u64("-1", p()).is_err());
    }
}
