//! Observability for Overseer systems: metrics derived from a system's event stream and a
//! JSON-lines sink for the events themselves.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![deny(unused_must_use, unsafe_code)]
