//! Brute-force protection: failed attempts per kiosk and per health card.
//!
//! A health card number and a birth date are not secrets a kiosk can keep safe by itself, so
//! guessing must be slow: after `free_attempts` failures each attempt waits `delay`, doubling
//! with each failure; after `lockout_after` failures the kiosk (or the card) is locked for
//! `lockout`, doubling with each lock within a day. Failures are forgotten after an hour
//! without one, locks after a day. Times are the host clock's epoch milliseconds.

use serde::{Deserialize, Serialize};

const HOUR: i64 = 60 * 60 * 1000;
const DAY: i64 = 24 * HOUR;

/// The site's settings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub free_attempts: u32,
    pub delay_ms: i64,
    pub lockout_after: u32,
    pub lockout_ms: i64,
}

/// What is stored per kiosk user and per card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guard {
    pub failures: u32,
    pub last_failure_ms: i64,
    pub locked_until_ms: i64,
    /// Locks within the last day, for the doubling.
    pub lockouts: u32,
    pub last_lockout_ms: i64,
}

impl Guard {
    /// Until when attempts are refused, if they are now.
    pub fn refused_until(&self, now: i64, p: &Policy) -> Option<i64> {
        if self.locked_until_ms > now {
            return Some(self.locked_until_ms);
        }
        let g = self.current(now);
        if g.failures >= p.free_attempts && g.failures > 0 {
            let until = g.last_failure_ms + backoff(p.delay_ms, g.failures - p.free_attempts);
            if until > now {
                return Some(until);
            }
        }
        None
    }

    /// After a failed attempt: the new state, and whether it just locked.
    pub fn fail(&self, now: i64, p: &Policy) -> (Guard, bool) {
        let mut g = self.current(now);
        g.failures += 1;
        g.last_failure_ms = now;
        if g.failures >= p.lockout_after.max(1) {
            g.lockouts += 1;
            g.last_lockout_ms = now;
            g.locked_until_ms = now + backoff(p.lockout_ms, g.lockouts - 1).min(DAY);
            g.failures = 0;
            return (g, true);
        }
        (g, false)
    }

    /// The state with old failures and locks forgotten.
    fn current(&self, now: i64) -> Guard {
        let mut g = self.clone();
        if now - g.last_failure_ms > HOUR {
            g.failures = 0;
        }
        if now - g.last_lockout_ms > DAY {
            g.lockouts = 0;
        }
        g
    }
}

/// `base * 2^n`, without overflow.
fn backoff(base: i64, n: u32) -> i64 {
    base.saturating_mul(1i64 << n.min(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        free_attempts: 3,
        delay_ms: 30_000,
        lockout_after: 6,
        lockout_ms: 15 * 60_000,
    };

    #[test]
    fn free_attempts_then_doubling_waits_then_a_lock() {
        let mut g = Guard::default();
        let mut now = 1_000_000;
        for _ in 0..3 {
            assert_eq!(g.refused_until(now, &P), None);
            g = g.fail(now, &P).0;
            now += 1000;
        }
        // Third failure: the next attempt waits 30 s.
        assert_eq!(g.refused_until(now, &P), Some(now - 1000 + 30_000));
        now += 30_000;
        assert_eq!(g.refused_until(now, &P), None);
        g = g.fail(now, &P).0;
        // Fourth: 60 s.
        assert_eq!(g.refused_until(now + 59_000, &P), Some(now + 60_000));
        now += 60_000;
        g = g.fail(now, &P).0;
        now += 120_000;
        let (locked, just) = g.fail(now, &P);
        assert!(just);
        assert_eq!(locked.refused_until(now + 1, &P), Some(now + 15 * 60_000));
        // A second lock the same day lasts twice as long.
        let mut g = locked;
        let mut t = now + 15 * 60_000;
        let mut last = (Guard::default(), false);
        for _ in 0..6 {
            last = g.fail(t, &P);
            g = last.0.clone();
            t += 10 * 60_000;
        }
        assert!(last.1);
        assert_eq!(g.locked_until_ms - g.last_lockout_ms, 30 * 60_000);
    }

    #[test]
    fn failures_are_forgotten_after_an_hour() {
        let mut g = Guard::default();
        for i in 0..3 {
            g = g.fail(i, &P).0;
        }
        assert!(g.refused_until(10, &P).is_some());
        assert_eq!(g.refused_until(2 * HOUR, &P), None);
        assert_eq!(g.fail(2 * HOUR, &P).0.failures, 1);
    }
}
