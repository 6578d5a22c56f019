//! What a generated token costs: energy at the wall, and optionally the hardware
//! written off over its life (the seed's subtitle: a datacenter on your desk).
//!
//! - energy per million tokens = W / 1000 (kW) × (10⁶ / tg tok/s) / 3600 (hours)
//!   × price per kWh;
//! - hardware per million tokens = cost / (tokens generated over the lifetime) × 10⁶,
//!   the lifetime being `lifetime_years` × 365 days × `hours_per_day` hours of
//!   generation at the measured speed.

use serde::Serialize;

/// Default written-off lifetime of the hardware, years.
pub const DEFAULT_LIFETIME_YEARS: f64 = 3.0;
/// Default hours of generation per day.
pub const DEFAULT_HOURS_PER_DAY: f64 = 24.0;

/// The user's economics inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Economics {
    /// Power drawn at the wall while generating, watts.
    pub watts: f64,
    /// Electricity price per kWh (any currency).
    pub price_kwh: f64,
    /// Purchase price of the machine (same currency), if it should be written off.
    pub hardware_cost: Option<f64>,
    /// Years to write it off over.
    pub lifetime_years: f64,
    /// Hours per day it generates.
    pub hours_per_day: f64,
}

/// Cost per million generated tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CostPerMtok {
    /// Energy.
    pub energy: f64,
    /// Hardware written off (when a cost was given).
    pub hardware: Option<f64>,
    /// Both.
    pub total: f64,
}

impl Economics {
    /// Energy-only inputs with the default lifetime and hours.
    pub fn energy(watts: f64, price_kwh: f64) -> Self {
        Economics {
            watts,
            price_kwh,
            hardware_cost: None,
            lifetime_years: DEFAULT_LIFETIME_YEARS,
            hours_per_day: DEFAULT_HOURS_PER_DAY,
        }
    }

    /// The cost per million tokens at `tg_tok_s`; `None` when the speed is not positive.
    pub fn cost_per_mtok(&self, tg_tok_s: f64) -> Option<CostPerMtok> {
        if tg_tok_s <= 0.0 || !tg_tok_s.is_finite() {
            return None;
        }
        let hours_per_mtok = 1e6 / tg_tok_s / 3600.0;
        let energy = self.watts / 1000.0 * hours_per_mtok * self.price_kwh;
        let hardware = self.hardware_cost.map(|cost| {
            let hours = self.lifetime_years * 365.0 * self.hours_per_day;
            let tokens = tg_tok_s * 3600.0 * hours;
            if tokens > 0.0 {
                cost / tokens * 1e6
            } else {
                f64::INFINITY
            }
        });
        Some(CostPerMtok {
            energy,
            hardware,
            total: energy + hardware.unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_per_million_tokens() {
        // 120 W at 10 tok/s: 1e6 tokens take 1e5 s = 27.777... h; 0.12 kW x 27.777 h
        // = 3.3333 kWh; at 0.30 per kWh that is 1.00.
        let e = Economics::energy(120.0, 0.30).cost_per_mtok(10.0).unwrap();
        assert!((e.energy - 1.0).abs() < 1e-12, "{e:?}");
        assert_eq!(e.hardware, None);
        assert_eq!(e.total, e.energy);
        // 150 W at 6.1 tok/s (the seed's 397B on Windows), 0.25 per kWh:
        // 1e6 / 6.1 / 3600 = 45.537 h; x 0.15 kW = 6.8306 kWh; x 0.25 = 1.70765.
        let e = Economics::energy(150.0, 0.25).cost_per_mtok(6.1).unwrap();
        assert!((e.energy - 1.707_650_273).abs() < 1e-8, "{e:?}");
    }

    #[test]
    fn hardware_written_off() {
        // 2000 over 2 years at 8 h/day: 5840 h; at 20 tok/s that is
        // 20 x 3600 x 5840 = 420,480,000 tokens; 2000 / 420.48 Mtok = 4.7565 per Mtok.
        let econ = Economics {
            watts: 100.0,
            price_kwh: 0.36,
            hardware_cost: Some(2000.0),
            lifetime_years: 2.0,
            hours_per_day: 8.0,
        };
        let c = econ.cost_per_mtok(20.0).unwrap();
        // energy: 1e6/20/3600 = 13.888 h x 0.1 kW x 0.36 = 0.5
        assert!((c.energy - 0.5).abs() < 1e-12);
        assert!((c.hardware.unwrap() - 4.756_468_797).abs() < 1e-8, "{c:?}");
        assert!((c.total - 5.256_468_797).abs() < 1e-8);
    }

    #[test]
    fn no_speed_no_cost() {
        assert_eq!(Economics::energy(100.0, 0.3).cost_per_mtok(0.0), None);
    }
}
