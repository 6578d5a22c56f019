//! Statistics of repeated measurements, computed as llama.cpp's `llama-bench` does:
//! tokens per second per repetition, then their mean and sample standard deviation.

use serde::Serialize;

/// Samples of one test and their summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Samples {
    /// Tokens per second of each repetition.
    pub samples_ts: Vec<f64>,
    /// Their mean.
    pub avg_ts: f64,
    /// Their sample standard deviation (n − 1; 0 for fewer than two samples).
    pub stddev_ts: f64,
}

impl Samples {
    /// Summarises tokens-per-second samples.
    pub fn new(samples_ts: Vec<f64>) -> Self {
        Samples {
            avg_ts: mean(&samples_ts),
            stddev_ts: stddev(&samples_ts),
            samples_ts,
        }
    }

    /// From token counts and wall times: `tokens / seconds` per repetition.
    pub fn from_times(tokens: u32, seconds: &[f64]) -> Self {
        Self::new(
            seconds
                .iter()
                .map(|&s| if s > 0.0 { f64::from(tokens) / s } else { 0.0 })
                .collect(),
        )
    }
}

/// Arithmetic mean (0 for no values).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Sample standard deviation (divides by n − 1; 0 for fewer than two values).
pub fn stddev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (v.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_stddev() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum to 32,
        // sample variance 32 / 7, stddev sqrt(32/7) = 2.138089935...
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&v), 5.0);
        assert!((stddev(&v) - 2.138_089_935_299_395).abs() < 1e-12);
        assert_eq!(stddev(&[3.0]), 0.0);
        assert_eq!(mean(&[]), 0.0);
    }

    #[test]
    fn rates_from_times() {
        // 128 tokens in 2 s and in 1 s: 64 and 128 tok/s, mean 96,
        // stddev sqrt(((64-96)^2 + (128-96)^2) / 1) = sqrt(2048) = 45.2548...
        let s = Samples::from_times(128, &[2.0, 1.0]);
        assert_eq!(s.samples_ts, vec![64.0, 128.0]);
        assert_eq!(s.avg_ts, 96.0);
        assert!((s.stddev_ts - 2048f64.sqrt()).abs() < 1e-12);
    }
}
