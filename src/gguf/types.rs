//! The ggml tensor type table: every type id a GGUF file may carry, with its block
//! size (elements per block) and bytes per block.
//!
//! Source: the pinned llama.cpp, `ggml/include/ggml.h` (`enum ggml_type`) and
//! `ggml/src/ggml.c` (`type_traits`), with block layouts from `ggml/src/ggml-common.h`.
//! The test `tests/llama_oracle.rs` checks every id against `ggml_type_size` and
//! `ggml_blck_size` of the compiled llama.cpp.

use serde::{Serialize, Serializer};
use std::fmt;

/// `QK_K` in ggml-common.h: elements per super-block of the k-quants and IQ types.
const QK_K: u32 = 256;

/// One ggml tensor type (`enum ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgmlType(u32);

/// Facts about one type id: name, elements per block, bytes per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeTraits {
    /// The name ggml prints (`ggml_type_name`), e.g. `q4_K`.
    pub name: &'static str,
    /// Elements per block (`ggml_blck_size`).
    pub block_size: u32,
    /// Bytes per block (`ggml_type_size`).
    pub type_size: u32,
    /// Whether the type is a quantized block format.
    pub quantized: bool,
}

const fn t(name: &'static str, block_size: u32, type_size: u32, quantized: bool) -> TypeTraits {
    TypeTraits {
        name,
        block_size,
        type_size,
        quantized,
    }
}

/// Type ids 0..=42. `None` marks ids whose support was removed from ggml
/// (4, 5: Q4_2/Q4_3; 31-33: Q4_0_4_4/4_8/8_8; 36-38: IQ4_NL_4_4/4_8/8_8): ggml gives
/// them block size 0 and llama.cpp's reader rejects tensors of those types.
const TABLE: [Option<TypeTraits>; 43] = [
    Some(t("f32", 1, 4, false)),                        // 0
    Some(t("f16", 1, 2, false)),                        // 1
    Some(t("q4_0", 32, 2 + 16, true)),                  // 2: d + 32 nibbles
    Some(t("q4_1", 32, 2 * 2 + 16, true)),              // 3: d, m + 32 nibbles
    None,                                               // 4: Q4_2, removed
    None,                                               // 5: Q4_3, removed
    Some(t("q5_0", 32, 2 + 4 + 16, true)),              // 6
    Some(t("q5_1", 32, 2 * 2 + 4 + 16, true)),          // 7
    Some(t("q8_0", 32, 2 + 32, true)),                  // 8
    Some(t("q8_1", 32, 2 * 2 + 32, true)),              // 9
    Some(t("q2_K", QK_K, 2 * 2 + 16 + 64, true)),       // 10
    Some(t("q3_K", QK_K, 2 + 64 + 32 + 12, true)),      // 11
    Some(t("q4_K", QK_K, 2 * 2 + 12 + 128, true)),      // 12
    Some(t("q5_K", QK_K, 2 * 2 + 12 + 128 + 32, true)), // 13
    Some(t("q6_K", QK_K, 2 + 16 + 192, true)),          // 14
    Some(t("q8_K", QK_K, 4 + 256 + 16 * 2, true)),      // 15
    Some(t("iq2_xxs", QK_K, 2 + 32 * 2, true)),         // 16
    Some(t("iq2_xs", QK_K, 2 + 32 * 2 + 8, true)),      // 17
    Some(t("iq3_xxs", QK_K, 2 + 3 * 32, true)),         // 18
    Some(t("iq1_s", QK_K, 2 + 32 + 16, true)),          // 19
    Some(t("iq4_nl", 32, 2 + 16, true)),                // 20
    Some(t("iq3_s", QK_K, 2 + 13 * 8 + 4, true)),       // 21
    Some(t("iq2_s", QK_K, 2 + 64 + 16, true)),          // 22
    Some(t("iq4_xs", QK_K, 2 + 2 + 4 + 128, true)),     // 23
    Some(t("i8", 1, 1, false)),                         // 24
    Some(t("i16", 1, 2, false)),                        // 25
    Some(t("i32", 1, 4, false)),                        // 26
    Some(t("i64", 1, 8, false)),                        // 27
    Some(t("f64", 1, 8, false)),                        // 28
    Some(t("iq1_m", QK_K, 32 + 16 + 8, true)),          // 29
    Some(t("bf16", 1, 2, false)),                       // 30
    None,                                               // 31: Q4_0_4_4, removed
    None,                                               // 32: Q4_0_4_8, removed
    None,                                               // 33: Q4_0_8_8, removed
    Some(t("tq1_0", QK_K, 2 + 4 + 48, true)),           // 34
    Some(t("tq2_0", QK_K, 2 + 64, true)),               // 35
    None,                                               // 36: IQ4_NL_4_4, removed
    None,                                               // 37: IQ4_NL_4_8, removed
    None,                                               // 38: IQ4_NL_8_8, removed
    Some(t("mxfp4", 32, 1 + 16, true)),                 // 39
    Some(t("nvfp4", 64, 4 + 32, true)),                 // 40
    Some(t("q1_0", 128, 2 + 16, true)),                 // 41
    Some(t("q2_0", 64, 2 + 16, true)),                  // 42
];

/// `GGML_TYPE_COUNT` of the pinned llama.cpp: ids at or above it are unknown.
pub const GGML_TYPE_COUNT: u32 = TABLE.len() as u32;

impl GgmlType {
    /// 32-bit float.
    pub const F32: GgmlType = GgmlType(0);
    /// 16-bit float.
    pub const F16: GgmlType = GgmlType(1);
    /// Q4_0.
    pub const Q4_0: GgmlType = GgmlType(2);
    /// Q8_0.
    pub const Q8_0: GgmlType = GgmlType(8);
    /// Q2_K.
    pub const Q2_K: GgmlType = GgmlType(10);
    /// Q3_K.
    pub const Q3_K: GgmlType = GgmlType(11);
    /// Q4_K.
    pub const Q4_K: GgmlType = GgmlType(12);
    /// Q5_K.
    pub const Q5_K: GgmlType = GgmlType(13);
    /// Q6_K.
    pub const Q6_K: GgmlType = GgmlType(14);
    /// IQ2_XXS.
    pub const IQ2_XXS: GgmlType = GgmlType(16);
    /// IQ2_XS.
    pub const IQ2_XS: GgmlType = GgmlType(17);
    /// IQ3_XXS.
    pub const IQ3_XXS: GgmlType = GgmlType(18);
    /// IQ1_S.
    pub const IQ1_S: GgmlType = GgmlType(19);
    /// IQ4_NL.
    pub const IQ4_NL: GgmlType = GgmlType(20);
    /// IQ3_S.
    pub const IQ3_S: GgmlType = GgmlType(21);
    /// IQ2_S.
    pub const IQ2_S: GgmlType = GgmlType(22);
    /// IQ4_XS.
    pub const IQ4_XS: GgmlType = GgmlType(23);
    /// BF16.
    pub const BF16: GgmlType = GgmlType(30);
    /// MXFP4.
    pub const MXFP4: GgmlType = GgmlType(39);

    /// The type with this id, if the pinned ggml knows it (removed ids included, so
    /// that a file naming one can be reported precisely).
    pub fn from_id(id: u32) -> Option<GgmlType> {
        (id < GGML_TYPE_COUNT).then_some(GgmlType(id))
    }

    /// The numeric id stored in GGUF files.
    pub fn id(self) -> u32 {
        self.0
    }

    /// Block size and bytes per block; `None` for ids whose support was removed.
    pub fn traits(self) -> Option<TypeTraits> {
        TABLE.get(self.0 as usize).copied().flatten()
    }

    /// The type named like ggml names it (`q4_K`, `iq2_xxs`, `f16`...), case-insensitive.
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TABLE.iter().enumerate().find_map(|(id, traits)| {
            traits
                .filter(|tr| tr.name.eq_ignore_ascii_case(name))
                .map(|_| GgmlType(id as u32))
        })
    }

    /// All ids that ggml can still store.
    pub fn all_supported() -> impl Iterator<Item = GgmlType> {
        (0..GGML_TYPE_COUNT)
            .map(GgmlType)
            .filter(|ty| ty.traits().is_some())
    }

    /// Bytes for a row of `n_elements` elements, or `None` when the row is not a whole
    /// number of blocks or the type was removed.
    pub fn row_bytes(self, n_elements: u64) -> Option<u64> {
        let tr = self.traits()?;
        let block = u64::from(tr.block_size);
        if !n_elements.is_multiple_of(block) {
            return None;
        }
        (n_elements / block).checked_mul(u64::from(tr.type_size))
    }

    /// Bits per weight of this type (bytes per block × 8 / block size).
    pub fn bits_per_weight(self) -> Option<f64> {
        let tr = self.traits()?;
        Some(f64::from(tr.type_size) * 8.0 / f64::from(tr.block_size))
    }

    /// The ggml name, or `type<ID>` for a removed id.
    pub fn name(self) -> String {
        match self.traits() {
            Some(tr) => tr.name.to_string(),
            None => format!("type{}", self.0),
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for GgmlType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// The `general.file_type` values of llama.cpp (`enum llama_ftype` in
/// `include/llama.h`), as the names llama.cpp prints (`llama_model_ftype_name`).
pub fn file_type_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "all F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K - Medium",
        11 => "Q3_K - Small",
        12 => "Q3_K - Medium",
        13 => "Q3_K - Large",
        14 => "Q4_K - Small",
        15 => "Q4_K - Medium",
        16 => "Q5_K - Small",
        17 => "Q5_K - Medium",
        18 => "Q6_K",
        19 => "IQ2_XXS - 2.0625 bpw",
        20 => "IQ2_XS - 2.3125 bpw",
        21 => "Q2_K - Small",
        22 => "IQ3_XS - 3.3 bpw",
        23 => "IQ3_XXS - 3.0625 bpw",
        24 => "IQ1_S - 1.5625 bpw",
        25 => "IQ4_NL - 4.5 bpw",
        26 => "IQ3_S - 3.4375 bpw",
        27 => "IQ3_S mix - 3.66 bpw",
        28 => "IQ2_S - 2.5 bpw",
        29 => "IQ2_M - 2.7 bpw",
        30 => "IQ4_XS - 4.25 bpw",
        31 => "IQ1_M - 1.75 bpw",
        32 => "BF16",
        36 => "TQ1_0 - 1.69 bpw ternary",
        37 => "TQ2_0 - 2.06 bpw ternary",
        38 => "MXFP4 MoE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block sizes written out from ggml-common.h's static_asserts, independently of the
    /// table's arithmetic above.
    #[test]
    fn known_sizes_match_ggml_common() {
        let expect = [
            ("q4_K", 256, 144),
            ("q6_K", 256, 210),
            ("q2_K", 256, 84),
            ("q3_K", 256, 110),
            ("iq2_xxs", 256, 66),
            ("iq2_xs", 256, 74),
            ("iq1_m", 256, 56),
            ("tq1_0", 256, 54),
            ("mxfp4", 32, 17),
            ("q8_0", 32, 34),
        ];
        for (name, block, size) in expect {
            let ty = GgmlType::from_name(name).expect(name);
            let tr = ty.traits().expect(name);
            assert_eq!((tr.block_size, tr.type_size), (block, size), "{name}");
        }
    }

    #[test]
    fn removed_and_unknown_ids() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38] {
            assert!(GgmlType::from_id(id).expect("in range").traits().is_none());
        }
        assert!(GgmlType::from_id(43).is_none());
        assert_eq!(GgmlType::all_supported().count(), 43 - 8);
    }

    #[test]
    fn row_bytes_rejects_partial_blocks() {
        assert_eq!(GgmlType::Q4_K.row_bytes(4096), Some(16 * 144));
        assert_eq!(GgmlType::Q4_K.row_bytes(100), None);
        assert_eq!(GgmlType::F32.row_bytes(3), Some(12));
    }
}
