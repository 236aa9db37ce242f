//! The wall clock, read in one place.
//!
//! The OKR domain never reads a clock (its callers pass `now`); the room core, the services
//! and the export read it here, so that a controllable clock for time-driven features
//! (reminders, overdue marks) replaces one function rather than a call in every module.

/// Now, in epoch milliseconds (the OKR model's `Millis`).
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
