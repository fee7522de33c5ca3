//! The two shapes real host numbers move in: a bounded random walk that is
//! pulled back towards a level which itself shifts now and then (CPU,
//! memory, a worker's RSS), and a bursty rate that idles near a base and
//! spikes for a few samples (disk and network I/O).

use rand::Rng;
use rand::rngs::SmallRng;

/// A bounded, mean-reverting random walk whose mean jumps to a new level
/// with a small chance per step (a job starts, traffic changes).
#[derive(Debug, Clone)]
pub struct Walk {
    value: f64,
    mean: f64,
    lo: f64,
    hi: f64,
    /// Share of the distance to the mean closed per step (0..1).
    pull: f64,
    /// Largest random move per step.
    step: f64,
    /// Chance per step that the mean moves to a new level.
    shift: f64,
}

impl Walk {
    /// Starts at `value`, which is also the first mean, inside `lo..=hi`.
    pub fn new(value: f64, lo: f64, hi: f64, pull: f64, step: f64, shift: f64) -> Self {
        let value = value.clamp(lo, hi);
        Self {
            value,
            mean: value,
            lo,
            hi,
            pull,
            step,
            shift,
        }
    }

    pub fn value(&self) -> f64 {
        self.value
    }

    /// Moves one step and returns the new value.
    pub fn next(&mut self, rng: &mut SmallRng) -> f64 {
        if self.shift > 0.0 && rng.random_bool(self.shift.min(1.0)) {
            self.mean = rng.random_range(self.lo..=self.hi);
        }
        // The sum of two uniforms: most moves small, a few large.
        let noise = rng.random_range(-0.5..=0.5) + rng.random_range(-0.5..=0.5);
        self.value += self.pull * (self.mean - self.value) + self.step * noise;
        self.value = self.value.clamp(self.lo, self.hi);
        self.value
    }
}

/// A rate (bytes per second) that idles around a base level and bursts to
/// many times that for a few samples.
#[derive(Debug, Clone)]
pub struct Bursty {
    base: Walk,
    burst_left: u32,
    factor: f64,
    /// Chance per step that a burst starts.
    chance: f64,
}

impl Bursty {
    /// `base` bytes/s on average when idle; a burst starts with `chance`
    /// per step.
    pub fn new(base: f64, chance: f64) -> Self {
        Self {
            base: Walk::new(base, base * 0.2, base * 5.0, 0.05, base * 0.3, 0.002),
            burst_left: 0,
            factor: 1.0,
            chance,
        }
    }

    /// The rate over the next interval.
    pub fn next(&mut self, rng: &mut SmallRng) -> f64 {
        let base = self.base.next(rng);
        if self.burst_left == 0 && rng.random_bool(self.chance) {
            self.burst_left = rng.random_range(2..=30);
            self.factor = rng.random_range(8.0..=120.0);
        }
        let factor = if self.burst_left > 0 {
            self.burst_left -= 1;
            self.factor * rng.random_range(0.6..=1.4)
        } else {
            rng.random_range(0.3..=1.7)
        };
        base * factor
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_walk_stays_in_bounds_and_moves() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut walk = Walk::new(50.0, 0.0, 100.0, 0.05, 10.0, 0.01);
        let values: Vec<f64> = (0..10_000).map(|_| walk.next(&mut rng)).collect();
        assert!(values.iter().all(|v| (0.0..=100.0).contains(v)));
        let distinct = values.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(distinct > 9_000, "it moves: {distinct}");
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        assert!(hi - lo > 30.0, "it wanders: {lo}..{hi}");
    }

    #[test]
    fn steps_are_small_compared_with_the_range() {
        let mut rng = SmallRng::seed_from_u64(8);
        let mut walk = Walk::new(30.0, 0.0, 100.0, 0.02, 4.0, 0.0);
        let mut last = walk.value();
        for _ in 0..1_000 {
            let v = walk.next(&mut rng);
            assert!((v - last).abs() <= 4.0 + 0.02 * 100.0, "{last} -> {v}");
            last = v;
        }
    }

    #[test]
    fn bursts_rise_far_above_the_base() {
        let mut rng = SmallRng::seed_from_u64(9);
        let mut rate = Bursty::new(1e6, 0.02);
        let values: Vec<f64> = (0..5_000).map(|_| rate.next(&mut rng)).collect();
        assert!(values.iter().all(|v| v.is_finite() && *v >= 0.0));
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let top = sorted[sorted.len() - 1];
        assert!(top > median * 8.0, "median {median}, top {top}");
    }

    #[test]
    fn the_same_seed_gives_the_same_walk() {
        let run = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut walk = Walk::new(10.0, 0.0, 100.0, 0.1, 5.0, 0.05);
            (0..100).map(|_| walk.next(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
