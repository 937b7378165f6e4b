//! A disk image in memory and helpers to write an encoder's blocks to it.

#![allow(dead_code)] // each test file uses a different part

use percore_disklog::{Encoder, Pending, SliceDisk, Superblock};

pub struct Image {
    pub bytes: Vec<u8>,
    pub block_size: u32,
}

impl Image {
    /// A zeroed region with `sb` in block 0.
    pub fn new(sb: &Superblock) -> Self {
        let mut bytes = vec![0; (sb.blocks * u64::from(sb.block_size)) as usize];
        sb.encode(&mut bytes);
        Image {
            bytes,
            block_size: sb.block_size,
        }
    }

    /// Byte offset in the image of log offset `offset`.
    pub fn at(&self, offset: u64) -> usize {
        self.block_size as usize + offset as usize
    }

    pub fn write(&mut self, lba: u64, data: &[u8]) {
        let at = lba as usize * self.block_size as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    pub fn write_pending(&mut self, p: &Pending<'_>) {
        self.write(p.lba, p.data);
    }

    pub fn disk(&self) -> SliceDisk<'_> {
        SliceDisk::new(&self.bytes, self.block_size)
    }
}

/// Writes everything pending and marks it written (a completed flush).
pub fn flush(enc: &mut Encoder, img: &mut Image) {
    if let Some(p) = enc.pending() {
        img.write_pending(&p);
        let w = p.written;
        enc.mark_written(w);
    }
}

/// A payload for `seq`: recognisable, never all zeros.
pub fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize * 31 + i * 7 + 1) as u8 | 1)
        .collect()
}

/// Appends, flushing whenever the window is full.
pub fn append(enc: &mut Encoder, img: &mut Image, data: &[u8]) -> u64 {
    match enc.append(data) {
        Ok(seq) => seq,
        Err(percore_disklog::AppendError::WindowFull) => {
            flush(enc, img);
            enc.append(data).unwrap()
        }
        Err(e) => panic!("append: {e}"),
    }
}
