//! Per-workload timing (pure): a workload's `kube-reloader.io/` timing annotations over the
//! global flags. What a workload leaves out, or gives an invalid value for, is the flag's.
//! The token bucket (`--reload-rate`, `--reload-burst`) is shared, so it stays global.

use std::time::Duration;

use crate::operator::{
    model::annotations::{COALESCE_MAX_DELAY, DurationAnnotation, Timing},
    options::Limits,
};

fn valid(value: &DurationAnnotation) -> Option<Duration> {
    value.as_ref()?.as_ref().ok().copied()
}

/// The limits a workload's reloads are held and paced by. The maximum delay is never
/// shorter than the window (the flags refuse that at start-up); a workload's shorter one is
/// raised to its window (and warned, see `problem`).
pub fn effective(global: &Limits, t: &Timing) -> Limits {
    let window = valid(&t.window).unwrap_or(global.coalesce_window);
    let max_delay = valid(&t.max_delay).unwrap_or(global.coalesce_max_delay);
    Limits {
        coalesce_window: window,
        coalesce_max_delay: max_delay.max(window),
        min_reload_interval: valid(&t.min_interval).unwrap_or(global.min_reload_interval),
        ..global.clone()
    }
}

/// The workload's own max delay shorter than its window, worth a Warning Event. A window
/// alone longer than the global max delay is no mistake: the max delay follows it quietly.
pub fn problem(global: &Limits, t: &Timing) -> Option<String> {
    let max_delay = valid(&t.max_delay)?;
    let window = valid(&t.window).unwrap_or(global.coalesce_window);
    (max_delay < window).then(|| {
        format!(
            "annotation {COALESCE_MAX_DELAY} {max_delay:?} is shorter than the coalescing window {window:?}; the window is used as the maximum delay"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> Limits {
        Limits {
            coalesce_window: Duration::from_secs(2),
            coalesce_max_delay: Duration::from_secs(30),
            reload_rate: 5.0,
            reload_burst: 10,
            min_reload_interval: Duration::ZERO,
        }
    }

    fn secs(s: u64) -> DurationAnnotation {
        Some(Ok(Duration::from_secs(s)))
    }

    fn bad() -> DurationAnnotation {
        Some(Err("soon".into()))
    }

    fn triple(l: &Limits) -> (u64, u64, u64) {
        let s = |d: Duration| d.as_secs();
        (
            s(l.coalesce_window),
            s(l.coalesce_max_delay),
            s(l.min_reload_interval),
        )
    }

    #[test]
    fn no_annotations_are_the_global_limits() {
        let l = effective(&global(), &Timing::default());
        assert_eq!(triple(&l), (2, 30, 0));
        assert_eq!(
            (l.reload_rate, l.reload_burst),
            (5.0, 10),
            "the bucket is global"
        );
        assert_eq!(problem(&global(), &Timing::default()), None);
    }

    #[test]
    fn each_annotation_overrides_its_flag_alone() {
        let t = Timing {
            window: secs(0),
            ..Default::default()
        };
        assert_eq!(triple(&effective(&global(), &t)), (0, 30, 0));
        let t = Timing {
            max_delay: secs(60),
            min_interval: secs(10),
            ..Default::default()
        };
        assert_eq!(triple(&effective(&global(), &t)), (2, 60, 10));
    }

    #[test]
    fn invalid_values_fall_back_to_the_flags() {
        let t = Timing {
            window: bad(),
            max_delay: bad(),
            min_interval: bad(),
        };
        assert_eq!(triple(&effective(&global(), &t)), (2, 30, 0));
        assert_eq!(problem(&global(), &t), None, "warned as invalid instead");
    }

    #[test]
    fn a_max_delay_shorter_than_the_window_is_raised_to_it_and_warned() {
        let t = Timing {
            window: secs(10),
            max_delay: secs(5),
            ..Default::default()
        };
        assert_eq!(triple(&effective(&global(), &t)), (10, 10, 0));
        let p = problem(&global(), &t).expect("a problem");
        assert!(
            p.contains(COALESCE_MAX_DELAY) && p.contains("5s") && p.contains("10s"),
            "{p}"
        );
        // Against the global window too.
        let t = Timing {
            max_delay: secs(1),
            ..Default::default()
        };
        assert_eq!(triple(&effective(&global(), &t)), (2, 2, 0));
        assert!(problem(&global(), &t).is_some());
    }

    #[test]
    fn a_window_past_the_global_max_delay_carries_it_without_a_warning() {
        let t = Timing {
            window: secs(60),
            ..Default::default()
        };
        assert_eq!(triple(&effective(&global(), &t)), (60, 60, 0));
        assert_eq!(problem(&global(), &t), None);
    }
}
