//! GPUs from `/sys/class/drm/card*/device` (amdgpu exposes `mem_info_vram_total`
//! = the carveout on an iGPU, and `mem_info_gtt_total`; `docs/facts.md`, 'sysfs').

use super::files::Root;
use super::procfs::{parse_pci_id, parse_u64};
use crate::hardware::error::DetectError;

/// What sysfs says about one DRM card.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawCard {
    /// "card0".
    pub name: String,
    /// PCI vendor id.
    pub vendor_id: u16,
    /// PCI device id, when readable.
    pub device_id: Option<u16>,
    /// `mem_info_vram_total` (amdgpu): VRAM, or the carveout on an APU.
    pub vram_total: Option<u64>,
    /// `mem_info_vram_used` (amdgpu).
    pub vram_used: Option<u64>,
    /// `mem_info_vis_vram_total` (amdgpu): CPU-visible VRAM.
    pub vis_vram_total: Option<u64>,
    /// `mem_info_gtt_total` (amdgpu).
    pub gtt_total: Option<u64>,
}

/// Whether a DRM entry is a card ("card0"), not a connector ("card0-DP-1") or a
/// render node ("renderD128").
fn is_card(name: &str) -> bool {
    name.strip_prefix("card")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The cards under `sys/class/drm`, in card-number order. A card without a readable
/// vendor file is skipped (noted in `notes`).
pub(crate) fn read_cards(
    root: &mut Root,
    notes: &mut Vec<String>,
) -> Result<Vec<RawCard>, DetectError> {
    let dir = root.path("sys/class/drm");
    let mut cards = Vec::new();
    let mut entries: Vec<_> = root
        .list(&dir)
        .into_iter()
        .filter(|(name, _)| is_card(name))
        .collect();
    entries.sort_by_key(|(name, _)| name[4..].parse::<u32>().unwrap_or(u32::MAX));
    for (name, path) in entries {
        let device = path.join("device");
        let vendor_path = device.join("vendor");
        let Some(vendor_text) = root.optional(&vendor_path) else {
            notes.push(format!(
                "{name}: no readable {}; card skipped",
                vendor_path.display()
            ));
            continue;
        };
        let vendor_id = parse_pci_id(&vendor_text, &vendor_path)?;
        let device_path = device.join("device");
        let device_id = match root.optional(&device_path) {
            Some(text) => Some(parse_pci_id(&text, &device_path)?),
            None => None,
        };
        let mut number = |file: &str| -> Result<Option<u64>, DetectError> {
            let p = device.join(file);
            root.optional(&p).map(|t| parse_u64(&t, &p)).transpose()
        };
        cards.push(RawCard {
            vram_total: number("mem_info_vram_total")?,
            vram_used: number("mem_info_vram_used")?,
            vis_vram_total: number("mem_info_vis_vram_total")?,
            gtt_total: number("mem_info_gtt_total")?,
            name,
            vendor_id,
            device_id,
        });
    }
    Ok(cards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_names() {
        assert!(is_card("card0"));
        assert!(is_card("card12"));
        assert!(!is_card("card"));
        assert!(!is_card("card0-DP-1"));
        assert!(!is_card("renderD128"));
        assert!(!is_card("version"));
    }
}
