//! Byte sizes as people write them ("2GiB", "512MB", "1.5 GiB") and as we print them.
//!
//! Decimal units (kB, MB, GB, TB, PB) are powers of 1000 and binary units (KiB, MiB,
//! GiB, TiB, PiB) powers of 1024, as in IEC 80000-13. A bare letter ("2G") is
//! refused because tools disagree on its meaning; a bare number is bytes.

/// One KiB.
pub const KIB: u64 = 1024;
/// One MiB.
pub const MIB: u64 = 1024 * KIB;
/// One GiB.
pub const GIB: u64 = 1024 * MIB;
/// One TiB.
pub const TIB: u64 = 1024 * GIB;

/// Fraction digits kept when parsing; more cannot change a whole byte count for any
/// unit up to PiB (10^-20 * 2^50 < 1).
const MAX_FRACTION_DIGITS: usize = 20;

/// A size string that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Nothing but whitespace.
    #[error("empty size; write a number with a unit, e.g. 2GiB or 512MB")]
    Empty,
    /// The number part is malformed.
    #[error("`{input}` is not a size: {problem}; write e.g. 2GiB, 512MB or 1.5GiB")]
    BadNumber {
        /// the text given
        input: String,
        /// what is wrong
        problem: &'static str,
    },
    /// A single-letter unit such as "G".
    #[error("`{input}`: unit `{unit}` is ambiguous; write {unit}iB (powers of 1024) or {unit}B (powers of 1000)")]
    AmbiguousUnit {
        /// the text given
        input: String,
        /// the unit as written
        unit: String,
    },
    /// A unit we do not know.
    #[error("`{input}`: unknown unit `{unit}`; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")]
    UnknownUnit {
        /// the text given
        input: String,
        /// the unit as written
        unit: String,
    },
    /// More bytes than a u64 holds.
    #[error("`{input}` is larger than 16 EiB; check the number")]
    TooLarge {
        /// the text given
        input: String,
    },
}

/// Parses "2GiB", "512MB", "115 GiB", "1.5GiB" or "123456" (bytes) into bytes.
///
/// Units are case-insensitive; fractions are rounded down to whole bytes.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    if let Some(rest) = text.strip_prefix(['-', '+']) {
        return Err(SizeError::BadNumber {
            input: input.to_string(),
            problem: if text.starts_with('-') && !rest.trim().is_empty() {
                "a size cannot be negative"
            } else {
                "a size takes no sign"
            },
        });
    }
    let unit_start = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_start);
    let multiplier = unit_multiplier(input, unit.trim())?;
    let bad = |problem| SizeError::BadNumber {
        input: input.to_string(),
        problem,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad("it has no digits"));
    }
    if fraction.contains('.') {
        return Err(bad("it has more than one decimal point"));
    }
    if multiplier == 1 && fraction.bytes().any(|b| b != b'0') {
        return Err(bad("a byte count must be a whole number"));
    }
    let too_large = || SizeError::TooLarge {
        input: input.to_string(),
    };
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse::<u128>().map_err(|_| too_large())?
    };
    let mut total = whole_value
        .checked_mul(u128::from(multiplier))
        .ok_or_else(too_large)?;
    let kept = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
    if !kept.is_empty() {
        // `kept` is at most 20 ASCII digits, so it fits a u128 and the product with a
        // multiplier below 2^51 stays below 2^118.
        let numerator = kept.parse::<u128>().map_err(|_| too_large())?;
        let denominator = 10u128.pow(kept.len() as u32);
        total = total
            .checked_add(numerator * u128::from(multiplier) / denominator)
            .ok_or_else(too_large)?;
    }
    u64::try_from(total).map_err(|_| too_large())
}

/// Bytes per unit, or why the unit is refused.
fn unit_multiplier(input: &str, unit: &str) -> Result<u64, SizeError> {
    let lower = unit.to_ascii_lowercase();
    let multiplier = match lower.as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        "tib" => TIB,
        "pib" => 1024 * TIB,
        "k" | "m" | "g" | "t" | "p" => {
            return Err(SizeError::AmbiguousUnit {
                input: input.to_string(),
                unit: unit.to_ascii_uppercase(),
            })
        }
        _ => {
            return Err(SizeError::UnknownUnit {
                input: input.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    Ok(multiplier)
}

/// Formats bytes for humans: "115.50 GiB", "512.0 MiB", "12.0 KiB", "17 B".
pub fn format_size(bytes: u64) -> String {
    // f64 has 53 bits of mantissa: exact enough for two printed decimals.
    let value = bytes as f64;
    if bytes >= GIB {
        format!("{:.2} GiB", value / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", value / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", value / KIB as f64)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse_size("2GiB"), Ok(2_147_483_648));
        assert_eq!(parse_size("512MB"), Ok(512_000_000));
        assert_eq!(parse_size("115 GiB"), Ok(123_480_309_760));
        assert_eq!(parse_size("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size("123456"), Ok(123_456));
        assert_eq!(parse_size("512 MiB"), Ok(536_870_912));
        assert_eq!(parse_size("62.0GB"), Ok(62_000_000_000));
        assert_eq!(parse_size("1kB"), Ok(1000));
        assert_eq!(parse_size("1TiB"), Ok(1_099_511_627_776));
        assert_eq!(parse_size("10 B"), Ok(10));
    }

    #[test]
    fn units_are_case_insensitive_and_space_tolerant() {
        assert_eq!(parse_size("  2gib "), Ok(2_147_483_648));
        assert_eq!(parse_size("2GIB"), Ok(2_147_483_648));
        assert_eq!(parse_size("512mb"), Ok(512_000_000));
    }

    #[test]
    fn fractions_round_down_and_leading_dot_works() {
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size(".5KiB"), Ok(512));
        assert_eq!(parse_size("1.0001kB"), Ok(1000));
        assert_eq!(parse_size("3."), Ok(3));
        assert_eq!(
            parse_size("0.1234567890123456789012345GiB"),
            Ok(132_560_717)
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("   "), Err(SizeError::Empty));
        assert!(matches!(
            parse_size("GiB"),
            Err(SizeError::BadNumber { .. })
        ));
        assert!(matches!(parse_size("."), Err(SizeError::BadNumber { .. })));
        assert!(matches!(
            parse_size("1.2.3GB"),
            Err(SizeError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_size("1.5"),
            Err(SizeError::BadNumber { .. })
        ));
        // The sign is the problem, not the unit.
        assert_eq!(
            parse_size("-1GB"),
            Err(SizeError::BadNumber {
                input: "-1GB".into(),
                problem: "a size cannot be negative"
            })
        );
        assert!(matches!(
            parse_size("2 parsecs"),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("1e9"),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("2G"),
            Err(SizeError::AmbiguousUnit { .. })
        ));
        assert!(matches!(
            parse_size("2 m"),
            Err(SizeError::AmbiguousUnit { .. })
        ));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(SizeError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_size("16EB"),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("16384PiB"),
            Err(SizeError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_size("99999999999999999999999999999999999999999999GiB"),
            Err(SizeError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_size("17179869184GiB"),
            Err(SizeError::TooLarge { .. })
        ));
        assert_eq!(
            parse_size("17179869183GiB"),
            Ok(17_179_869_183 * 1_073_741_824)
        );
    }

    #[test]
    fn error_messages_say_what_to_write() {
        let msg = parse_size("2G").unwrap_err().to_string();
        assert!(msg.contains("GiB") && msg.contains("GB"), "{msg}");
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(format_size(123_480_309_760 + 536_870_912), "115.50 GiB");
        assert_eq!(format_size(536_870_912), "512.0 MiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(17), "17 B");
        assert_eq!(format_size(u64::MAX), "17179869184.00 GiB");
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_size(&s);
        }

        #[test]
        fn never_panics_on_size_like_text(s in "[0-9.]{0,45} ?[kKmMgGtTpPiIbB]{0,4}") {
            let _ = parse_size(&s);
        }

        #[test]
        fn plain_numbers_are_bytes(n in any::<u64>()) {
            prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        }

        #[test]
        fn gib_is_a_shift_by_thirty(n in 0u64..(1 << 34)) {
            prop_assert_eq!(parse_size(&format!("{n}GiB")), Ok(n << 30));
        }
    }
}
