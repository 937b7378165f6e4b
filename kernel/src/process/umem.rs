//! Checked copies between kernel and user memory (the models: Hubris'
//! `umem.rs`, Redox's `usercopy.rs`, Asterinas' `VmReader`): a syscall
//! argument that names user memory is a number, never a Rust reference.
//! Before a byte moves:
//!
//! - a null pointer (anywhere in the first page) is [`Error::Null`];
//! - `addr + len` (and, for arrays, `count * size`) must not overflow:
//!   [`Error::Overflow`];
//! - the range must lie in `[USER_BASE, USER_TOP)`: a non-canonical,
//!   kernel-half or across-the-top range is [`Error::BadAddress`];
//! - the pointer must be aligned as the call's type needs:
//!   [`Error::Misaligned`];
//! - every page must be mapped ([`Error::NotMapped`]) and, for a write,
//!   writable ([`Error::ReadOnly`]).
//!
//! The copy itself is `arch`'s fault-tolerant routine in the process's
//! (activated) address space, so a page that vanished between the check
//! and the copy is an error too, not a kernel crash. A zero-length range
//! is valid anywhere and touches nothing.

use alloc::vec;
use alloc::vec::Vec;

use percore_abi::{Error, USER_BASE, USER_TOP};

use super::vm::AddressSpace;
use crate::arch::user;
use crate::mem::PAGE_SIZE;

/// Checks `[addr, addr + len)` for a read (or, with `write`, a write) of
/// values aligned to `align` bytes.
pub fn check(
    space: &mut AddressSpace,
    addr: u64,
    len: u64,
    align: u64,
    write: bool,
) -> Result<(), Error> {
    if len == 0 {
        return Ok(());
    }
    if addr < USER_BASE {
        return Err(Error::Null);
    }
    let end = addr.checked_add(len).ok_or(Error::Overflow)?;
    if addr >= USER_TOP || end > USER_TOP {
        return Err(Error::BadAddress);
    }
    if align > 1 && !addr.is_multiple_of(align) {
        return Err(Error::Misaligned);
    }
    let mut page = addr - addr % PAGE_SIZE;
    while page < end {
        let access = space.access(page).ok_or(Error::NotMapped)?;
        if write && !access.writable() {
            return Err(Error::ReadOnly);
        }
        page += PAGE_SIZE;
    }
    Ok(())
}

/// The byte length of `count` values of `size` bytes, if it fits.
pub fn array_len(count: u64, size: u64) -> Result<u64, Error> {
    count.checked_mul(size).ok_or(Error::Overflow)
}

/// Copies `dst.len()` bytes of user memory at `addr` into `dst`.
pub fn read(space: &mut AddressSpace, addr: u64, dst: &mut [u8], align: u64) -> Result<(), Error> {
    check(space, addr, dst.len() as u64, align, false)?;
    if dst.is_empty() {
        return Ok(());
    }
    space.activate();
    // SAFETY: the range was checked to lie in the user half.
    match unsafe { user::copy_from_user(dst, addr) } {
        0 => Ok(()),
        _ => Err(Error::NotMapped),
    }
}

/// Copies `len` bytes of user memory at `addr` into a new buffer.
pub fn read_vec(space: &mut AddressSpace, addr: u64, len: u64) -> Result<Vec<u8>, Error> {
    check(space, addr, len, 1, false)?;
    let mut buffer = vec![0; len as usize];
    read(space, addr, &mut buffer, 1)?;
    Ok(buffer)
}

/// Copies `src` to user memory at `addr` (which must be writable).
pub fn write(space: &mut AddressSpace, addr: u64, src: &[u8], align: u64) -> Result<(), Error> {
    check(space, addr, src.len() as u64, align, true)?;
    if src.is_empty() {
        return Ok(());
    }
    space.activate();
    // SAFETY: the range was checked to lie in the user half.
    match unsafe { user::copy_to_user(addr, src) } {
        0 => Ok(()),
        _ => Err(Error::NotMapped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::user::Access;

    const DATA: u64 = 0x40_0000;
    const TEXT: u64 = 0x50_0000;

    fn space() -> AddressSpace {
        let mut space = AddressSpace::new().unwrap();
        space
            .map_zeroed(DATA, 2 * PAGE_SIZE, Access::ReadWrite)
            .unwrap();
        space
            .map_zeroed(TEXT, PAGE_SIZE, Access::ReadExecute)
            .unwrap();
        space.map_stack(0x7000_0000, PAGE_SIZE).unwrap();
        space
    }

    #[test]
    fn bad_ranges_get_their_error() {
        let mut s = space();
        let cases: &[(&str, u64, u64, u64, bool, Error)] = &[
            ("null", 0, 8, 1, false, Error::Null),
            ("null page", 0x10, 8, 1, false, Error::Null),
            (
                "non-canonical",
                0x8000_0000_0000_0000,
                8,
                1,
                false,
                Error::BadAddress,
            ),
            (
                "just above the top",
                USER_TOP,
                8,
                1,
                false,
                Error::BadAddress,
            ),
            (
                "kernel half",
                0xFFFF_8000_0000_1000,
                8,
                1,
                false,
                Error::BadAddress,
            ),
            (
                "across the top",
                USER_TOP - 4,
                8,
                1,
                false,
                Error::BadAddress,
            ),
            ("len usize::MAX", DATA, u64::MAX, 1, false, Error::Overflow),
            ("misaligned", DATA + 1, 8, 8, false, Error::Misaligned),
            ("unmapped", 0x60_0000, 8, 1, false, Error::NotMapped),
            (
                "runs off the end",
                DATA + 2 * PAGE_SIZE - 4,
                8,
                1,
                false,
                Error::NotMapped,
            ),
            (
                "guard page",
                0x7000_0000 - 2 * PAGE_SIZE,
                8,
                1,
                false,
                Error::NotMapped,
            ),
            ("write to text", TEXT, 8, 1, true, Error::ReadOnly),
        ];
        for &(what, addr, len, align, write, error) in cases {
            assert_eq!(check(&mut s, addr, len, align, write), Err(error), "{what}");
        }
        assert_eq!(
            check(&mut s, 0, 0, 8, true),
            Ok(()),
            "len 0 touches nothing"
        );
        assert_eq!(check(&mut s, DATA + 8, 2 * PAGE_SIZE - 8, 8, true), Ok(()));
        assert_eq!(check(&mut s, TEXT, 8, 1, false), Ok(()));
        assert_eq!(array_len(u64::MAX / 2, 16), Err(Error::Overflow));
        assert_eq!(array_len(4, 16), Ok(64));
    }

    #[test]
    fn copies_round_trip_across_a_page_boundary() {
        let mut s = space();
        let at = DATA + PAGE_SIZE - 3;
        write(&mut s, at, b"percore", 1).unwrap();
        let mut back = [0u8; 7];
        read(&mut s, at, &mut back, 1).unwrap();
        assert_eq!(&back, b"percore");
        assert_eq!(read_vec(&mut s, at, 7).unwrap(), b"percore");
        assert_eq!(write(&mut s, TEXT, b"x", 1), Err(Error::ReadOnly));
    }
}
