//! The fixed wall-clock grid samples are taken on: tick k falls at
//! k × interval since the Unix epoch, and the sample is stamped with that
//! grid time. A late tick (a busy host, a slow /proc read) never shifts the
//! ones after it: each tick is computed from the clock, not from the last
//! one, and grid points already past are skipped rather than bunched up.
//! Rates are still divided by the real time between reads (each collector
//! keeps its own `Instant`).
//!
//! Every host with the same interval samples at the same instants, so the
//! aggregator's buckets line up.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Grid {
    interval: Duration,
    last: Option<u128>,
}

impl Grid {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(1)),
            last: None,
        }
    }

    /// When to take the next sample and the timestamp (ms since the epoch)
    /// it stands for.
    pub fn next_tick(&mut self) -> (Instant, i64) {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (wait, point) = self.next_after(since_epoch);
        (
            Instant::now() + wait,
            i64::try_from(point / 1_000_000).unwrap_or(i64::MAX),
        )
    }

    /// The wait from `now` (since the epoch) to the next grid point, and
    /// that point in ns since the epoch.
    pub fn next_after(&mut self, now: Duration) -> (Duration, u128) {
        let step = self.interval.as_nanos();
        let now_ns = now.as_nanos();
        let mut point = (now_ns / step + 1) * step;
        match self.last {
            // The first sample needs a useful stretch since the counters
            // were primed: not a grid point a moment away.
            None if point - now_ns < step / 2 => point += step,
            // The wall clock went back: never repeat a timestamp.
            Some(last) if point <= last => point = last + step,
            _ => {}
        }
        self.last = Some(point);
        let wait = u64::try_from(point.saturating_sub(now_ns)).unwrap_or(u64::MAX);
        (Duration::from_nanos(wait), point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u128 = 1_000_000;

    #[test]
    fn ticks_stay_on_the_grid_however_late() {
        let mut grid = Grid::new(Duration::from_secs(1));
        // Started 300 ms into a second: the next point is 700 ms away.
        let (wait, point) = grid.next_after(Duration::from_millis(10_300));
        assert_eq!((wait, point), (Duration::from_millis(700), 11_000 * MS));
        // Woken 40 ms late: the next point is still on the grid.
        let (wait, point) = grid.next_after(Duration::from_millis(11_040));
        assert_eq!((wait, point), (Duration::from_millis(960), 12_000 * MS));
        // Woken 2.5 s late: points in the past are skipped, not bunched.
        let (_, point) = grid.next_after(Duration::from_millis(14_500));
        assert_eq!(point, 15_000 * MS);
        // The clock stepped back: no repeated timestamp.
        let (_, point) = grid.next_after(Duration::from_millis(13_000));
        assert_eq!(point, 16_000 * MS);
    }

    #[test]
    fn the_first_tick_is_not_a_moment_after_start() {
        let mut grid = Grid::new(Duration::from_secs(5));
        let (wait, point) = grid.next_after(Duration::from_millis(9_900));
        assert_eq!((wait, point), (Duration::from_millis(5_100), 15_000 * MS));
    }

    #[test]
    fn next_tick_lands_on_a_multiple_of_the_interval() {
        let mut grid = Grid::new(Duration::from_millis(250));
        let (at, ts) = grid.next_tick();
        assert_eq!(ts % 250, 0);
        assert!(at > Instant::now());
    }
}
