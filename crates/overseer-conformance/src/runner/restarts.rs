//! How a run restarts the scenario's workers.

/// How the scenario's workers are restarted: the trace must be the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Restarts {
    /// Each restart spawns a new actor (OTP's way, and the default for any ractor actor).
    #[default]
    NewActor,
    /// Workers survive their failures and are rebuilt in place
    /// ([`InPlaceChild`](overseer_supervisor::InPlaceChild)) when their supervisor decides so.
    InPlace,
    /// As [`InPlace`](Self::InPlace), and a worker carries out its own restart when its
    /// supervisor lets it ([`FailureReporter::failed`](overseer_supervisor::FailureReporter::failed)).
    InPlaceHere,
}

impl Restarts {
    /// Whether workers are restarted in place.
    pub fn in_place(self) -> bool {
        matches!(self, Self::InPlace | Self::InPlaceHere)
    }
}
