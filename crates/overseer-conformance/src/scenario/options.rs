//! The values on tree and action lines: names, numbers, restart types, shutdowns, flags, and
//! the options that `child`, `template` and `add` lines share.

use std::str::FromStr;

use super::error::ScenarioErrorKind;
use super::syntax::{Restart, ShutdownSpec};
use crate::term::is_atom_syntax;

pub(super) fn parse_name(
    token: Option<&str>,
    keyword: &'static str,
) -> Result<String, ScenarioErrorKind> {
    let name = token.ok_or(ScenarioErrorKind::MissingName { keyword })?;
    if !is_atom_syntax(name) {
        return Err(ScenarioErrorKind::BadName {
            name: name.to_owned(),
        });
    }
    Ok(name.to_owned())
}

/// Sets `slot` once; a second value is a duplicate.
pub(super) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    option: &'static str,
) -> Result<(), ScenarioErrorKind> {
    if slot.is_some() {
        return Err(ScenarioErrorKind::DuplicateOption { option });
    }
    *slot = Some(value);
    Ok(())
}

/// A decimal number without sign that fits in `T`.
pub(super) fn parse_number<T: FromStr + Bounded>(
    field: &'static str,
    value: &str,
) -> Result<T, ScenarioErrorKind> {
    let bad = || ScenarioErrorKind::BadNumber {
        field,
        value: value.to_owned(),
        max: T::MAX_U64,
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse::<T>().map_err(|_| bad())
}

/// The largest value of a number type, for error messages.
pub(super) trait Bounded {
    const MAX_U64: u64;
}

impl Bounded for u32 {
    const MAX_U64: u64 = u32::MAX as u64;
}

impl Bounded for u64 {
    const MAX_U64: u64 = u64::MAX;
}

pub(super) fn parse_restart(value: &str) -> Result<Restart, ScenarioErrorKind> {
    Restart::from_word(value).ok_or_else(|| ScenarioErrorKind::BadValue {
        key: "restart",
        value: value.to_owned(),
        expected: "permanent, transient or temporary",
    })
}

pub(super) fn parse_shutdown(value: &str) -> Result<ShutdownSpec, ScenarioErrorKind> {
    match value {
        "brutal_kill" => Ok(ShutdownSpec::BrutalKill),
        "infinity" => Ok(ShutdownSpec::Infinity),
        _ if value.bytes().next().is_some_and(|b| b.is_ascii_digit()) => {
            parse_number("shutdown", value).map(ShutdownSpec::Millis)
        }
        _ => Err(ScenarioErrorKind::BadValue {
            key: "shutdown",
            value: value.to_owned(),
            expected: "brutal_kill, infinity or a non-negative number of milliseconds",
        }),
    }
}

pub(super) fn parse_bool(key: &'static str, value: &str) -> Result<bool, ScenarioErrorKind> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ScenarioErrorKind::BadValue {
            key,
            value: value.to_owned(),
            expected: "true or false",
        }),
    }
}

/// The options shared by `child`, `template` and `add` lines.
pub(super) struct WorkerOpts {
    pub(super) restart: Option<Restart>,
    pub(super) shutdown: Option<ShutdownSpec>,
    pub(super) significant: bool,
    pub(super) stubborn: bool,
}

/// `[permanent|transient|temporary] [shutdown=...] [significant=...] [stubborn]`, any order.
pub(super) fn parse_worker_opts(
    tokens: &[&str],
    keyword: &'static str,
) -> Result<WorkerOpts, ScenarioErrorKind> {
    let mut restart = None;
    let mut shutdown = None;
    let mut significant = None;
    let mut stubborn = None;
    for &token in tokens {
        match token.split_once('=') {
            Some(("shutdown", value)) => {
                set_once(&mut shutdown, parse_shutdown(value)?, "shutdown")?
            }
            Some(("significant", value)) => {
                set_once(
                    &mut significant,
                    parse_bool("significant", value)?,
                    "significant",
                )?;
            }
            Some((key, _)) => {
                return Err(ScenarioErrorKind::UnknownOption {
                    key: key.to_owned(),
                    keyword,
                    expected: "shutdown= or significant= (the restart type is a bare word)",
                })
            }
            None if token == "stubborn" => set_once(&mut stubborn, (), "stubborn")?,
            None => {
                let parsed =
                    Restart::from_word(token).ok_or_else(|| ScenarioErrorKind::UnknownWord {
                        word: token.to_owned(),
                        keyword,
                    })?;
                set_once(&mut restart, parsed, "restart")?;
            }
        }
    }
    let stubborn = stubborn.is_some();
    if stubborn && shutdown == Some(ShutdownSpec::Infinity) {
        return Err(ScenarioErrorKind::StubbornInfinity);
    }
    Ok(WorkerOpts {
        restart,
        shutdown,
        significant: significant.unwrap_or(false),
        stubborn,
    })
}
