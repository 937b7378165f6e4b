//! Helpers shared by the threaded tests (included with `mod common;`).

use percore_proto::{CoreId, Endpoint, Message};

/// Drains everything currently waiting, in batches, into `f`.
pub fn drain_all(ep: &mut Endpoint, mut f: impl FnMut(CoreId, Message)) -> usize {
    let mut total = 0;
    loop {
        let n = ep.drain(64, &mut f);
        if n == 0 {
            return total;
        }
        total += n;
    }
}
