//! QEMU's firmware configuration device (fw_cfg), read through I/O ports.
//!
//! The host passes named blobs with `-fw_cfg name=opt/...,string=...`; the
//! test kernel reads which tests to run this way. On anything but QEMU the
//! signature check fails and every lookup reports [`FwCfgError::NotPresent`].

use crate::arch::io;

const SELECTOR_PORT: u16 = 0x510;
const DATA_PORT: u16 = 0x511;
const SIGNATURE_KEY: u16 = 0x0000;
const FILE_DIR_KEY: u16 = 0x0019;
const NAME_LEN: usize = 56;

/// Errors from fw_cfg lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwCfgError {
    /// No fw_cfg device (not running under QEMU).
    NotPresent,
    /// No file of that name.
    NotFound,
    /// The file is larger than the caller's buffer (its size is given).
    TooLarge(usize),
}

fn select(key: u16) {
    // SAFETY: writing the selector register of fw_cfg has no effect beyond
    // choosing which item the data port streams.
    unsafe { io::write_u16(SELECTOR_PORT, key) }
}

fn read_bytes(buf: &mut [u8]) {
    for byte in buf {
        // SAFETY: reading the fw_cfg data port streams the selected item.
        *byte = unsafe { io::read_u8(DATA_PORT) };
    }
}

fn read_be32() -> u32 {
    let mut bytes = [0; 4];
    read_bytes(&mut bytes);
    u32::from_be_bytes(bytes)
}

/// Whether a fw_cfg device answers with the "QEMU" signature.
pub fn present() -> bool {
    select(SIGNATURE_KEY);
    let mut signature = [0; 4];
    read_bytes(&mut signature);
    &signature == b"QEMU"
}

/// Reads the file `name` into `buf`, returning its length.
pub fn read_file(name: &str, buf: &mut [u8]) -> Result<usize, FwCfgError> {
    if !present() {
        return Err(FwCfgError::NotPresent);
    }
    select(FILE_DIR_KEY);
    let count = read_be32();
    for _ in 0..count {
        let size = read_be32() as usize;
        let mut key = [0; 2];
        read_bytes(&mut key);
        let mut reserved = [0; 2];
        read_bytes(&mut reserved);
        let mut entry_name = [0u8; NAME_LEN];
        read_bytes(&mut entry_name);
        let len = entry_name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        if &entry_name[..len] != name.as_bytes() {
            continue;
        }
        if size > buf.len() {
            return Err(FwCfgError::TooLarge(size));
        }
        select(u16::from_be_bytes(key));
        read_bytes(&mut buf[..size]);
        return Ok(size);
    }
    Err(FwCfgError::NotFound)
}

/// Reads the file `name` into `buf` as text (the boot configuration files
/// under `opt/percore/`). Bytes that are not UTF-8 read as empty text,
/// which each file's parser refuses or takes as its default.
pub fn read_text<'a>(name: &str, buf: &'a mut [u8]) -> Result<&'a str, FwCfgError> {
    let len = read_file(name, buf)?;
    Ok(core::str::from_utf8(&buf[..len]).unwrap_or(""))
}
