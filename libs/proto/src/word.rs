//! [`Word`]: an owned value packed into one message word, the one audited
//! place where a kernel object's ownership is turned into a `u64` that rides
//! in a ring slot and back.
//!
//! A message is a `Copy` value written into a preallocated slot, so an
//! object that travels with it (a task, a waker, a reply cell) travels as
//! a raw pointer. Packing leaks the owner; unpacking takes it back, exactly
//! once, on the receiving core. A message that is never delivered (its
//! receiver halted for good) leaks its object: never a double free.

use alloc::boxed::Box;
use alloc::sync::Arc;

/// An owned value that can travel as one `u64`.
///
/// ```
/// use percore_proto::Word;
/// use std::sync::Arc;
/// let shared = Arc::new(7u8);
/// let word = shared.clone().into_word();
/// // SAFETY: `word` came from `into_word` of an `Arc<u8>`, unpacked once.
/// let back = unsafe { Arc::<u8>::from_word(word) };
/// assert_eq!(Arc::strong_count(&shared), 2);
/// drop(back);
/// assert_eq!(Arc::strong_count(&shared), 1);
/// ```
pub trait Word: Sized {
    /// Packs the value; its ownership moves into the word.
    fn into_word(self) -> u64;

    /// Unpacks a value packed by [`Word::into_word`].
    ///
    /// # Safety
    /// `word` must come from `into_word` of this same type, and be unpacked
    /// at most once.
    unsafe fn from_word(word: u64) -> Self;
}

impl<T> Word for Arc<T> {
    fn into_word(self) -> u64 {
        Arc::into_raw(self) as u64
    }

    unsafe fn from_word(word: u64) -> Self {
        // SAFETY: the caller guarantees `word` is a pointer from
        // `Arc::into_raw` of an `Arc<T>`, reclaimed once.
        unsafe { Arc::from_raw(word as *const T) }
    }
}

impl<T> Word for Box<T> {
    fn into_word(self) -> u64 {
        Box::into_raw(self) as u64
    }

    unsafe fn from_word(word: u64) -> Self {
        // SAFETY: the caller guarantees `word` is a pointer from
        // `Box::into_raw` of a `Box<T>`, reclaimed once.
        unsafe { Box::from_raw(word as *mut T) }
    }
}
