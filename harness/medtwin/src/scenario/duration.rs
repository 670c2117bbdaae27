//! Durations in scenario files: `90s`, `5m`, `2h`, `1h30m`, `250ms`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A non-negative duration in milliseconds, parsed from text (the
/// vocabulary of [`medtwin_check::duration`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub u64);

impl Dur {
    /// Milliseconds.
    pub fn ms(self) -> u64 {
        self.0
    }

    /// As a `std` duration.
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

pub use medtwin_check::duration::{format, parse};

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        struct DurVisitor;
        impl Visitor<'_> for DurVisitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"5m\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Dur, E> {
                parse(text).map(Dur).map_err(|why| {
                    E::custom(format!(
                        "invalid duration \"{text}\": {why}; write a number and a unit (ms, s, m, h, d), e.g. \"90s\", \"5m\", \"2h\""
                    ))
                })
            }
        }
        deserializer.deserialize_str(DurVisitor)
    }
}
