//! A preset's model summary built in memory, for planning a model before it is
//! downloaded ("what if I fetch the 115 GB Qwen3.5-397B?").
//!
//! The summary is exactly what [`ModelMeta::open`] would return for the file
//! `strix-run synth --preset NAME --sparse` writes: the same writers
//! ([`build_writers`]) produce the headers, which are parsed from memory with the
//! data region standing in as zeros, so nothing touches the disk.

use crate::gguf::{read_header, GgufModel, ReadStats, Shard, SplitName, DEFAULT_ALIGNMENT};
use crate::model::presets::Preset;
use crate::model::synth::{build_writers, SynthError};
use crate::model::ModelMeta;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// The summary of `preset` at its default quantization and shard count. Its paths are
/// the file names `synth` would write (`qwen3.5-397b-a17b-00001-of-00004.gguf`); no
/// such files exist.
pub fn preset_meta(preset: &Preset) -> Result<ModelMeta, SynthError> {
    let writers = build_writers(preset, preset.default_quant, 0)?;
    let count = writers.len() as u32;
    let mut shards = Vec::with_capacity(writers.len());
    for (i, w) in writers.iter().enumerate() {
        let path = if count > 1 {
            PathBuf::from(
                SplitName {
                    prefix: preset.name.to_string(),
                    no: 0,
                    count,
                }
                .file_name(i as u32 + 1),
            )
        } else {
            PathBuf::from(format!("{}.gguf", preset.name))
        };
        let header = w.header_bytes();
        let align = w
            .metadata()
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT)
            .max(1);
        let data: u64 = w
            .tensors()
            .iter()
            .map(|t| t.offset + t.n_bytes.next_multiple_of(align))
            .max()
            .unwrap_or(0);
        let len = header.len() as u64 + data;
        let header = read_header(
            HeaderThenZeros {
                header,
                len,
                pos: 0,
            },
            &path,
        )?;
        shards.push(Shard {
            path,
            header,
            stats: ReadStats { bytes_read: 0 },
        });
    }
    let first =
        shards
            .first()
            .map(|s| s.path.clone())
            .ok_or_else(|| SynthError::InvalidPreset {
                preset: preset.name.to_string(),
                problem: "it produced no files".into(),
            })?;
    Ok(ModelMeta::from_gguf(&GgufModel { shards }, &first)?)
}

/// A file image: the header bytes, then zeros up to `len` (the sparse data region).
struct HeaderThenZeros {
    header: Vec<u8>,
    len: u64,
    pos: u64,
}

impl Read for HeaderThenZeros {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        let in_header = usize::try_from(self.pos)
            .ok()
            .filter(|&at| at < self.header.len());
        let copied = match in_header {
            Some(at) => {
                let k = n.min(self.header.len() - at);
                buf[..k].copy_from_slice(&self.header[at..at + k]);
                k
            }
            None => 0,
        };
        buf[copied..n].fill(0);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for HeaderThenZeros {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}
