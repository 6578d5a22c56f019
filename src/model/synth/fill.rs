//! Random but valid weights: seeded values for every tensor type this module can fill,
//! with every block scale a small finite f16, so llama.cpp's forward pass stays finite.

use super::quant::gt;
use crate::gguf::{GgmlType, TensorInfo};

/// xorshift64* (Vigna), seeded through splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// FNV-1a of a tensor name, to give every tensor its own stream.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// f32 to IEEE half (round to nearest, subnormals kept).
fn f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let a = x.abs();
    if a.is_nan() {
        return sign | 0x7e00;
    }
    if a >= 65504.0 {
        return sign | 0x7bff;
    }
    if a < 6.103_515_6e-5 {
        // subnormal: a = m × 2⁻²⁴
        return sign | (a * 16_777_216.0).round() as u16;
    }
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let mant = bits & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (mant >> 13);
    if mant & 0x1000 != 0 {
        h += 1;
    }
    sign | (h.min(0x7bff) as u16)
}

/// How one tensor's values look.
#[derive(Clone, Copy)]
enum Values {
    /// Norm weights: 1.
    Ones,
    /// Qwen3.5's `ssm_a` (−exp(A_log)): negative, so the recurrent state decays.
    Decay,
    /// Uniform with root mean square `rms`.
    Uniform(f32),
}

fn values_for(t: &TensorInfo) -> Values {
    if t.name.ends_with("norm.weight") {
        Values::Ones
    } else if t.name.ends_with("ssm_a") {
        Values::Decay
    } else {
        // weights of a row of n inputs: keep each output's variance near its input's
        let n = t.shape.first().copied().unwrap_or(1).max(1) as f32;
        Values::Uniform(1.0 / n.sqrt())
    }
}

fn value(v: Values, rng: &mut Rng) -> f32 {
    match v {
        Values::Ones => 1.0,
        Values::Decay => -(0.1 + 0.9 * rng.unit()),
        // uniform on [-r√3, r√3] has root mean square r
        Values::Uniform(r) => (2.0 * rng.unit() - 1.0) * r * 1.732_050_8,
    }
}

/// Where a quantized block keeps its f16 scales, and how large the dequantized value of a
/// random block is for scale 1 (root mean square of `scale multiplier × quant`), so the
/// scale can be set for the wanted weight size. Offsets from ggml-common.h.
struct BlockScale {
    /// Offset of the f16 super-block scale `d`.
    d: usize,
    /// Offset and ratio to `d` of an f16 `dmin`/`m`, if any (chosen to centre the values).
    min: Option<(usize, f32)>,
    /// Root mean square of the dequantized values when `d` = 1.
    rms: f32,
}

fn block_scale(ty: GgmlType) -> Option<BlockScale> {
    let s = |d, min, rms| Some(BlockScale { d, min, rms });
    match ty.name().as_str() {
        "q4_0" | "iq4_nl" => s(0, None, if ty == GgmlType::Q4_0 { 4.6 } else { 64.0 }),
        "q4_1" => s(0, Some((2, -8.0)), 4.6),
        "q5_0" => s(0, None, 9.2),
        "q5_1" => s(0, Some((2, -16.0)), 9.2),
        "q8_0" => s(0, None, 74.0),
        "q2_K" => s(80, Some((82, 1.5)), 10.0),
        "q3_K" => s(108, None, 42.0),
        "q4_K" => s(0, Some((2, 7.5)), 214.0),
        "q5_K" => s(0, Some((2, 15.5)), 434.0),
        "q6_K" => s(208, None, 1369.0),
        "iq2_xxs" | "iq2_xs" | "iq2_s" => s(0, None, 62.0),
        "iq3_xxs" | "iq3_s" => s(0, None, 160.0),
        "iq1_s" => s(0, None, 9.0),
        "iq4_xs" => s(0, None, 1184.0),
        _ => None,
    }
}

/// Whether [`fill_chunk`] can write valid data of this type.
pub(super) fn can_fill(ty: GgmlType) -> bool {
    ty == GgmlType::F32
        || ty == GgmlType::F16
        || ty == GgmlType::BF16
        || ty == gt("iq1_m")
        || block_scale(ty).is_some()
}

/// Fills `chunk` (whole blocks of tensor `t`, starting `offset` bytes into it) with
/// seeded random values: every scale a small finite f16, so llama.cpp's forward pass
/// stays finite.
pub(super) fn fill_chunk(seed: u64, t: &TensorInfo, offset: u64, chunk: &mut [u8]) {
    let mut rng = Rng::new(seed ^ name_hash(&t.name) ^ offset.rotate_left(17));
    let values = values_for(t);
    let ty = t.ggml_type;
    if ty == GgmlType::F32 {
        for c in chunk.chunks_exact_mut(4) {
            c.copy_from_slice(&value(values, &mut rng).to_le_bytes());
        }
        return;
    }
    if ty == GgmlType::F16 {
        for c in chunk.chunks_exact_mut(2) {
            c.copy_from_slice(&f16_bits(value(values, &mut rng)).to_le_bytes());
        }
        return;
    }
    if ty == GgmlType::BF16 {
        for c in chunk.chunks_exact_mut(2) {
            let b = (value(values, &mut rng).to_bits() >> 16) as u16;
            c.copy_from_slice(&b.to_le_bytes());
        }
        return;
    }
    let Some(traits) = ty.traits() else {
        return;
    };
    let block = traits.type_size as usize;
    let target = match values {
        Values::Uniform(r) => r,
        _ => 0.05,
    };
    rng.fill(chunk);
    if ty == gt("iq1_m") {
        // block_iq1_m has no f16 field: the scale's 16 bits are the top nibbles of the
        // four u16 `scales` words (bytes 48..56), see dequantize_row_iq1_m.
        let h = f16_bits(target / 9.0);
        for b in chunk.chunks_exact_mut(block) {
            for k in 0..4 {
                let at = 48 + 2 * k;
                let w = u16::from_le_bytes([b[at], b[at + 1]]);
                let w = (w & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12);
                b[at..at + 2].copy_from_slice(&w.to_le_bytes());
            }
        }
        return;
    }
    let Some(scale) = block_scale(ty) else {
        return;
    };
    let d = target / scale.rms;
    let d16 = f16_bits(d).to_le_bytes();
    let min16 = scale
        .min
        .map(|(at, ratio)| (at, f16_bits(d * ratio).to_le_bytes()));
    for b in chunk.chunks_exact_mut(block) {
        b[scale.d..scale.d + 2].copy_from_slice(&d16);
        if let Some((at, m)) = min16 {
            b[at..at + 2].copy_from_slice(&m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(-2.0), 0xc000);
        assert_eq!(f16_bits(0.0), 0);
        assert_eq!(f16_bits(65504.0), 0x7bff);
        assert_eq!(f16_bits(1e9), 0x7bff);
        // smallest subnormal 2^-24
        assert_eq!(f16_bits(5.960_464_5e-8), 1);
        assert_eq!(f16_bits(6.103_515_6e-5), 0x0400);
    }
}
