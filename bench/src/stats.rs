//! Latency percentiles.

use serde_json::{Map, Value};

/// Adds `<prefix>_p50_us`, `_p99_us`, `_p999_us` and `_max_us` of `samples` (microseconds).
pub fn percentiles(out: &mut Map<String, Value>, prefix: &str, samples: &mut [u32]) {
    samples.sort_unstable();
    let at = |q: f64| -> Value {
        if samples.is_empty() {
            return Value::Null;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)].into()
    };
    out.insert(format!("{prefix}_p50_us"), at(0.5));
    out.insert(format!("{prefix}_p99_us"), at(0.99));
    out.insert(format!("{prefix}_p999_us"), at(0.999));
    out.insert(format!("{prefix}_max_us"), at(1.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_range() {
        let mut v: Vec<u32> = (1..=1000).rev().collect();
        let mut m = Map::new();
        percentiles(&mut m, "lat", &mut v);
        assert_eq!(m["lat_p50_us"], 501);
        assert_eq!(m["lat_p99_us"], 990);
        assert_eq!(m["lat_max_us"], 1000);
        let mut m = Map::new();
        percentiles(&mut m, "lat", &mut []);
        assert_eq!(m["lat_p50_us"], Value::Null);
    }
}
