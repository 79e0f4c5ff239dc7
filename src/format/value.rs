//! The float values Prometheus gives a meaning of their own (`model/value`), by their exact
//! bits: a staleness marker is one NaN among many, told apart only by its bits.

/// The exact bit pattern Prometheus writes as a staleness marker (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The NaN Prometheus writes for an ordinary NaN (`value.NormalNaN`).
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Whether `bits` are a staleness marker's (Prometheus's `value.IsStaleNaN`).
pub fn is_stale(bits: u64) -> bool {
    bits == STALE_NAN_BITS
}
