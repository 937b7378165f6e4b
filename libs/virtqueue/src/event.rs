//! `VIRTIO_F_EVENT_IDX` notification suppression (2.7.7.2, 2.7.10): the
//! one comparison both sides use to decide whether to notify.

/// Whether moving a ring index from `old` to `new` crosses `event`, i.e.
/// whether the entry numbered `event` was published by this move. This is
/// the spec's (and Linux's) `vring_need_event`.
///
/// The other side writes `event` = "wake me when the entry with this index
/// appears" (`avail_event` from the device, `used_event` from the driver).
/// Since the last decision this side has published entries
/// `old, old + 1, ..., new - 1`; it notifies iff `event` is one of them.
///
/// Indices are free-running u16 that wrap, so the test is done in modular
/// arithmetic: `new - event - 1` is how far behind `new` the event lies
/// (minus one), `new - old` is how many entries were published. `event` is
/// inside `[old, new)` exactly when the first distance is smaller than the
/// second. Both differences are taken mod 2^16, so the test is correct
/// across the wrap as long as fewer than 2^16 entries are published between
/// two decisions (the queue forces a notification before that).
///
/// ```
/// use percore_virtqueue::need_event;
/// assert!(need_event(5, 6, 5)); // entry 5 was just published
/// assert!(!need_event(7, 6, 5)); // the other side waits for entry 7
/// assert!(!need_event(4, 6, 5)); // entry 4 was published before: already notified
/// assert!(need_event(65535, 1, 65534)); // across the wrap
/// assert!(!need_event(3, 5, 5)); // nothing published
/// ```
pub const fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::need_event;

    /// Against the definition: notify iff `event` is one of the entries
    /// `old, old + 1, ..., new - 1` (mod 2^16), for every event value,
    /// around the wrap and away from it.
    #[test]
    fn matches_the_definition() {
        for old in [0u16, 1, 32767, 65500, 65535] {
            for published in 0u16..70 {
                let new = old.wrapping_add(published);
                for event in 0..=u16::MAX {
                    // `event` is `old + k` for some `k < published`.
                    let crossed = event.wrapping_sub(old) < published;
                    assert_eq!(need_event(event, new, old), crossed, "{event} {new} {old}");
                }
            }
        }
    }
}
