//! A [`Duration`] as a JSON number of milliseconds, for `#[serde(with = "overseer_serde::millis")]`;
//! [`option`] does the same for `Option<Duration>` (`null` for `None`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

const NANOS_PER_MILLI: u32 = 1_000_000;

/// Writes `duration` as milliseconds: an integer when it is a whole number of them, else a
/// fraction.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    if duration.subsec_nanos().is_multiple_of(NANOS_PER_MILLI) {
        if let Ok(whole) = u64::try_from(duration.as_millis()) {
            return serializer.serialize_u64(whole);
        }
    }
    serializer
        .serialize_f64(duration.as_secs() as f64 * 1e3 + f64::from(duration.subsec_nanos()) / 1e6)
}

/// Reads milliseconds (an integer or a fraction, never negative) back as a [`Duration`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(MillisVisitor)
}

/// The same for `Option<Duration>`: `None` is `null`. Give the field `#[serde(default)]` too,
/// so that a missing field reads as `None` as it does without `with`.
pub mod option {
    use super::*;

    /// Writes `Some` as milliseconds, `None` as `null`.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` as `None` and milliseconds as `Some`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<Millis>::deserialize(deserializer)?.map(|Millis(duration)| duration))
    }

    struct Millis(Duration);

    impl<'de> Deserialize<'de> for Millis {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            super::deserialize(deserializer).map(Millis)
        }
    }
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration as a non-negative number of milliseconds")
    }

    fn visit_u64<E: de::Error>(self, millis: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(millis))
    }

    fn visit_i64<E: de::Error>(self, millis: i64) -> Result<Duration, E> {
        u64::try_from(millis)
            .map(Duration::from_millis)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(millis), &self))
    }

    fn visit_f64<E: de::Error>(self, millis: f64) -> Result<Duration, E> {
        let invalid = || E::invalid_value(de::Unexpected::Float(millis), &self);
        if !millis.is_finite() || millis < 0.0 {
            return Err(invalid());
        }
        let nanos = (millis * 1e6).round();
        if nanos < u64::MAX as f64 {
            // Exact to the nanosecond while the product is (below 2^51 ns, about 26 days).
            Ok(Duration::from_nanos(nanos as u64))
        } else {
            Duration::try_from_secs_f64(millis / 1e3).map_err(|_| invalid())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        d: Duration,
        #[serde(with = "super::option", default)]
        o: Option<Duration>,
    }

    fn json(d: Duration) -> String {
        serde_json::to_string(&Holder { d, o: None }).expect("serializes")
    }

    fn back(text: &str) -> Result<Duration, serde_json::Error> {
        serde_json::from_str::<Holder>(text).map(|holder| holder.d)
    }

    #[test]
    fn whole_milliseconds_are_integers_and_the_rest_fractions() {
        assert_eq!(json(Duration::from_secs(10)), r#"{"d":10000,"o":null}"#);
        assert_eq!(json(Duration::ZERO), r#"{"d":0,"o":null}"#);
        assert_eq!(json(Duration::from_micros(1500)), r#"{"d":1.5,"o":null}"#);
        assert_eq!(json(Duration::from_nanos(1)), r#"{"d":1e-6,"o":null}"#);
        assert_eq!(
            json(Duration::from_nanos(110_711_754)),
            r#"{"d":110.711754,"o":null}"#
        );
    }

    #[test]
    fn durations_read_back_to_the_nanosecond() {
        // A deterministic spread of durations from 1 ns to about 25 days.
        let mut nanos: u64 = 1;
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        while nanos < 2_200_000_000_000_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            for d in [nanos, nanos + state % nanos.max(1)] {
                let duration = Duration::from_nanos(d);
                assert_eq!(back(&json(duration)).expect("reads"), duration, "{d} ns");
            }
            nanos = nanos * 3 + 7;
        }
        let whole = Duration::from_secs(u64::MAX / 1000);
        assert_eq!(back(&json(whole)).expect("reads"), whole);
    }

    #[test]
    fn options_are_null_or_milliseconds_and_may_be_missing() {
        let holder = Holder {
            d: Duration::ZERO,
            o: Some(Duration::from_millis(25_000)),
        };
        let text = serde_json::to_string(&holder).expect("serializes");
        assert_eq!(text, r#"{"d":0,"o":25000}"#);
        assert_eq!(
            serde_json::from_str::<Holder>(&text).expect("reads"),
            holder
        );
        let missing: Holder = serde_json::from_str(r#"{"d":3}"#).expect("reads");
        assert_eq!(missing.o, None);
    }

    #[test]
    fn negative_and_non_numbers_are_refused() {
        for text in [
            r#"{"d":-1}"#,
            r#"{"d":-0.5}"#,
            r#"{"d":"10s"}"#,
            r#"{"d":{"secs":10,"nanos":0}}"#,
            r#"{"d":1e300}"#,
        ] {
            assert!(back(text).is_err(), "{text} was accepted");
        }
    }
}
