//! The reconnection delay: exponential backoff with jitter, exactly as `socket.io-client`
//! (`backo2`) computes it.

use std::time::Duration;

/// The delay before reconnection attempt number `attempt` (0 for the first).
///
/// `min(delay * 2^attempt ± jitter, max)`, where the jitter is
/// `floor(random * randomization_factor * ms)`, subtracted when `floor(random * 10)` is even
/// and added when odd, and `random` is uniform in `[0, 1)`. This is the formula of the
/// official client, so a Rust and a JS client spread their reconnections alike. The function
/// is pure: the caller draws `random` (the tests use a seeded RNG).
pub fn reconnect_delay(
    attempt: u32,
    delay: Duration,
    delay_max: Duration,
    randomization_factor: f64,
    random: f64,
) -> Duration {
    let base = delay.as_secs_f64() * 1000.0;
    let max = delay_max.as_secs_f64() * 1000.0;
    let mut ms = base * 2f64.powi(i32::try_from(attempt).unwrap_or(i32::MAX));
    let factor = randomization_factor.clamp(0.0, 1.0);
    let random = if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if factor > 0.0 && ms.is_finite() {
        let deviation = (random * factor * ms).floor();
        ms = if ((random * 10.0).floor() as u64) & 1 == 0 {
            ms - deviation
        } else {
            ms + deviation
        };
    }
    let ms = if ms.is_finite() { ms.min(max) } else { max };
    Duration::from_millis(ms.max(0.0).floor() as u64)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const S1: Duration = Duration::from_secs(1);
    const S5: Duration = Duration::from_secs(5);

    #[test]
    fn without_jitter_it_doubles_up_to_the_max() {
        let d: Vec<u64> = (0..6)
            .map(|a| reconnect_delay(a, S1, S5, 0.0, 0.7).as_millis() as u64)
            .collect();
        assert_eq!(d, [1000, 2000, 4000, 5000, 5000, 5000]);
        // Huge attempt numbers saturate instead of overflowing.
        assert_eq!(reconnect_delay(u32::MAX, S1, S5, 0.5, 0.3), S5);
    }

    #[test]
    fn jitter_follows_the_official_formula() {
        // random 0.25: floor(2.5) = 2 is even, so the deviation floor(0.25*0.5*1000) = 125 is
        // subtracted.
        assert_eq!(
            reconnect_delay(0, S1, S5, 0.5, 0.25),
            Duration::from_millis(875)
        );
        // random 0.35: floor(3.5) = 3 is odd: added.
        assert_eq!(
            reconnect_delay(0, S1, S5, 0.5, 0.35),
            Duration::from_millis(1175)
        );
        // The max applies after the jitter.
        assert_eq!(
            reconnect_delay(2, S1, S5, 0.5, 0.35),
            Duration::from_millis(4700)
        );
        assert_eq!(reconnect_delay(3, S1, S5, 0.5, 0.35), S5);
        assert_eq!(
            reconnect_delay(2, S1, S5, 0.5, 0.25),
            Duration::from_millis(3500)
        );
    }

    #[test]
    fn seeded_sequences_are_reproducible_and_bounded() {
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|a| reconnect_delay(a, S1, S5, 0.5, rng.random::<f64>()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        for (attempt, d) in run(42).into_iter().enumerate() {
            let nominal = (1000u64 << attempt.min(10)).min(5000);
            let lo = nominal / 2;
            let hi = (nominal + nominal / 2).min(5000);
            let ms = d.as_millis() as u64;
            assert!(
                (lo..=hi).contains(&ms),
                "attempt {attempt}: {ms} ms not in {lo}..={hi}"
            );
        }
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for r in [f64::NAN, f64::INFINITY, -1.0, 2.0] {
            let d = reconnect_delay(3, S1, S5, 7.0, r);
            assert!(d <= S5);
        }
        assert_eq!(
            reconnect_delay(0, Duration::ZERO, S5, 0.5, 0.5),
            Duration::ZERO
        );
    }
}
