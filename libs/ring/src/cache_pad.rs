//! [`CachePadded`]: keeps a hot value alone on its cache line(s).
//!
//! x86_64 lines are 64 bytes, but the L2 "adjacent line" prefetcher pulls
//! lines in 128-byte pairs, so two cursors 64 bytes apart still ping-pong.
//! 128-byte alignment (what crossbeam and rtrb use) avoids that.

use core::ops::Deref;

/// A value aligned (and therefore padded) to 128 bytes.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}
