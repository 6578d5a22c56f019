//! Sizing the Linux GTT with `ttm.pages_limit`, and the exact commands to do it.
//!
//! Linux GTT defaults to ~50% of RAM; raise it with `ttm.pages_limit=<4 KiB pages>`
//! (30146560 pages = 115 GiB), e.g. with `amd-ttm --set 115`, which writes
//! /etc/modprobe.d/ttm.conf. `amdgpu.gttsize` (MiB) is deprecated since ~6.17
//! (`docs/facts.md`, 'GTT and ttm.pages_limit'; seed repo README, measured with
//! 30146560).

use serde::Serialize;

use super::size::GIB;
use super::Hardware;

/// Bytes per TTM page (`ttm.pages_limit` counts 4 KiB pages).
pub const TTM_PAGE_BYTES: u64 = 4096;

/// How to give the GPU a GTT of a given size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TtmAdvice {
    /// The page count.
    pub pages_limit: u64,
    /// The kernel command-line parameter, e.g. `ttm.pages_limit=30146560`.
    pub kernel_parameter: String,
    /// The amd-ttm command, e.g. `amd-ttm --set 115` (its argument is GiB).
    pub amd_ttm_command: String,
}

impl Hardware {
    /// The `ttm.pages_limit` value for a GTT of `bytes` (rounded down to whole pages).
    pub fn ttm_pages_limit_for(bytes: u64) -> u64 {
        bytes / TTM_PAGE_BYTES
    }

    /// The kernel parameter and amd-ttm command for a GTT of `bytes`.
    pub fn ttm_advice(bytes: u64) -> TtmAdvice {
        let pages = Self::ttm_pages_limit_for(bytes);
        let page_bytes = pages.saturating_mul(TTM_PAGE_BYTES);
        let gib = if page_bytes.is_multiple_of(GIB) {
            (page_bytes / GIB).to_string()
        } else {
            // Two decimals, rounded down so the command never asks for more than `bytes`.
            let hundredths = u128::from(page_bytes) * 100 / u128::from(GIB);
            format!("{}.{:02}", hundredths / 100, hundredths % 100)
        };
        TtmAdvice {
            pages_limit: pages,
            kernel_parameter: format!("ttm.pages_limit={pages}"),
            amd_ttm_command: format!("amd-ttm --set {gib}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_value_115_gib() {
        // The seed's measured setting: 30146560 pages = 115 GiB.
        assert_eq!(
            Hardware::ttm_pages_limit_for(115 * 1024 * 1024 * 1024),
            30_146_560
        );
        let advice = Hardware::ttm_advice(123_480_309_760);
        assert_eq!(advice.kernel_parameter, "ttm.pages_limit=30146560");
        assert_eq!(advice.amd_ttm_command, "amd-ttm --set 115");
    }

    #[test]
    fn partial_gib_and_partial_pages_round_down() {
        assert_eq!(Hardware::ttm_pages_limit_for(4095), 0);
        assert_eq!(Hardware::ttm_pages_limit_for(8191), 1);
        // 100.5 GiB
        let advice = Hardware::ttm_advice(107_911_053_312);
        assert_eq!(advice.pages_limit, 26_345_472);
        assert_eq!(advice.amd_ttm_command, "amd-ttm --set 100.50");
        let advice = Hardware::ttm_advice(u64::MAX);
        assert_eq!(advice.pages_limit, 4_503_599_627_370_495);
    }
}
