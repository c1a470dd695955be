//! Time as bringup writes it: RFC 3339 in UTC for events and the checkpoint, and the
//! Kubernetes MicroTime format for Leases.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2024-05-01T12:00:00.123Z`.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `2024-05-01T12:00:00.123456Z`, what `coordination.k8s.io/v1` Lease times are.
pub fn micro_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses any RFC 3339 time into UTC.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Milliseconds in a duration, saturated.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
