//! Fuzzes the planner on model headers: the first bytes choose the machine and the
//! request, the rest is a GGUF header followed (virtually) by a 1 PiB hole for the
//! tensor data. A header that reads must plan to a typed error or a plan that fits its
//! budgets by its own figures: never a panic, and never a size that wrapped around.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use strix_run::gguf::{read_header, GgufModel};
use strix_run::hardware::{Hardware, PRESET_NAMES};
use strix_run::model::ModelMeta;
use strix_run::planner::{Pinned, Planner, Request};

/// The header bytes, then zeros up to `len`.
struct Holey<'a> {
    head: Cursor<&'a [u8]>,
    len: u64,
}

impl Read for Holey<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pos = self.head.position();
        let n = self.head.read(buf)?;
        if n > 0 || pos >= self.len {
            return Ok(n);
        }
        let n = buf.len().min((self.len - pos) as usize);
        buf[..n].fill(0);
        self.head.set_position(pos + n as u64);
        Ok(n)
    }
}

impl Seek for Holey<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.head.position().saturating_add_signed(d),
        };
        self.head.set_position(pos);
        Ok(pos)
    }
}

/// Sizes the knobs pick from: none (the planner's default), small, typical, limits.
const SIZES: [Option<u32>; 8] = [
    None,
    Some(1),
    Some(32),
    Some(512),
    Some(4096),
    Some(131_072),
    Some(1 << 31),
    Some(u32::MAX),
];

fuzz_target!(|data: &[u8]| {
    let Some((knobs, header)) = data.split_first_chunk::<4>() else {
        return;
    };
    let path = Path::new("fuzz.gguf");
    let source = Holey {
        head: Cursor::new(header),
        len: 1 << 50,
    };
    let Ok(header) = read_header(source, path) else {
        return;
    };
    let model = GgufModel::single(path, header);
    let Ok(meta) = ModelMeta::from_gguf(&model, path) else {
        return;
    };
    let hw = Hardware::preset(PRESET_NAMES[usize::from(knobs[0]) % PRESET_NAMES.len()])
        .expect("a preset");
    let req = Request {
        n_ctx: SIZES[usize::from(knobs[1] % 8)],
        n_seq: Some(u32::from(knobs[2] % 4).pow(4).max(1)),
        pinned: Pinned {
            n_ubatch: SIZES[usize::from(knobs[3] % 8)],
            n_batch: SIZES[usize::from(knobs[3] % 8)],
            flash_attn: [None, Some(true), Some(false)][usize::from(knobs[3] >> 3) % 3],
            ..Pinned::default()
        },
        ..Request::default()
    };
    if let Ok(plan) = Planner::plan(&meta, &hw, &req) {
        let m = &plan.memory;
        assert!(m.gpu_bytes <= m.gpu_budget_bytes, "{m:?}");
        assert!(m.host_bytes <= m.host_budget_bytes, "{m:?}");
    }
});
