//! Health as the probes and people see it: `/ready` (caches warm, the first state stored;
//! `ready`), `/live` (the engine turning, no watch failing for long; `liveness`), and each
//! watch stream's state and last sign of life (`streams`, fed from the wire by `tap`).

mod liveness;
mod ready;
mod streams;
mod tap;

pub use liveness::{HEARTBEAT, Heartbeat, LiveLimits, NotLive, check};
pub use ready::Readiness;
pub use streams::{Seen, StreamBoard, StreamHealth, StreamState, StreamView};
pub use tap::tapped;

/// What the engine, the watches and the HTTP server share about health (besides
/// [`Readiness`], which the engine publishes). Cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    pub streams: StreamBoard,
    pub turns: Heartbeat,
    pub limits: LiveLimits,
}

impl Health {
    pub fn new(limits: LiveLimits) -> Self {
        Health {
            limits,
            ..Health::default()
        }
    }

    /// `/live`'s verdict now.
    pub fn live(&self) -> Result<(), NotLive> {
        let now = std::time::Instant::now();
        check(self.limits, self.turns.idle(now), &self.streams.views(now))
    }
}
