//! Restart strategies and automatic shutdown.

use serde::{Deserialize, Serialize};

/// Which children a supervisor restarts when one of them must be restarted:
///
/// | strategy | restarted | others |
/// |---|---|---|
/// | [`OneForOne`](Self::OneForOne) | the exited child | untouched |
/// | [`OneForAll`](Self::OneForAll) | every child | stopped in reverse start order, then all started in start order |
/// | [`RestForOne`](Self::RestForOne) | the exited child and those started after it | the later ones stopped in reverse order, then restarted in order; earlier ones untouched |
/// | [`Dynamic`](Self::Dynamic) | the exited child | untouched; children are added at run time from one template (OTP's `simple_one_for_one`) |
///
/// A group restart counts once toward intensity. It also starts children that were merely not
/// running (a transient child that exited normally, a child stopped with
/// [`terminate_child`](crate::SupervisorRef::terminate_child)); temporary children caught in it
/// are stopped and deleted for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Restart only the exited child (the default).
    #[default]
    OneForOne,
    /// Restart all children.
    OneForAll,
    /// Restart the exited child and every child started after it.
    RestForOne,
    /// Children made at run time from one template; restart only the exited one.
    Dynamic,
}

impl Strategy {
    /// The children affected when the child at `index` of `len` must be restarted: an index
    /// range into the start order.
    ///
    /// ```
    /// use overseer_supervisor::Strategy;
    /// assert_eq!(Strategy::OneForOne.affected(2, 5), 2..3);
    /// assert_eq!(Strategy::OneForAll.affected(2, 5), 0..5);
    /// assert_eq!(Strategy::RestForOne.affected(2, 5), 2..5);
    /// ```
    pub fn affected(self, index: usize, len: usize) -> std::ops::Range<usize> {
        match self {
            Self::OneForOne | Self::Dynamic => index..index + 1,
            Self::OneForAll => 0..len,
            Self::RestForOne => index..len,
        }
    }
}

/// When a supervisor shuts itself down because *significant* children exited by themselves
/// (OTP ≥ 24). Exits caused by the supervisor (a group restart, `terminate_child`) never count.
///
/// | mode | the supervisor shuts down when |
/// |---|---|
/// | [`Never`](Self::Never) | never; significant children are rejected |
/// | [`AnySignificant`](Self::AnySignificant) | any significant child exits and is not restarted |
/// | [`AllSignificant`](Self::AllSignificant) | a significant child exits, is not restarted, and no significant child is left running |
///
/// The supervisor then stops its other children and exits with reason `shutdown` (no
/// escalation). Such a supervisor should be a transient or temporary child of its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Never shut down automatically (the default).
    #[default]
    Never,
    /// Shut down when any significant child exits.
    AnySignificant,
    /// Shut down when the last significant child has exited.
    AllSignificant,
}

impl AutoShutdown {
    /// OTP's `do_auto_shutdown/2`: whether the supervisor shuts down after a child that was not
    /// restarted exited. `significant_left` says whether any significant child is still running
    /// or waiting for a restart retry.
    ///
    /// ```
    /// use overseer_supervisor::AutoShutdown;
    /// assert!(AutoShutdown::AnySignificant.shuts_down(true, true));
    /// assert!(!AutoShutdown::AllSignificant.shuts_down(true, true));
    /// assert!(AutoShutdown::AllSignificant.shuts_down(true, false));
    /// assert!(!AutoShutdown::AnySignificant.shuts_down(false, false));
    /// ```
    pub fn shuts_down(self, exited_was_significant: bool, significant_left: bool) -> bool {
        match self {
            Self::Never => false,
            Self::AnySignificant => exited_was_significant,
            Self::AllSignificant => exited_was_significant && !significant_left,
        }
    }
}
