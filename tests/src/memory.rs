//! Heap and physical-frame tests.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bootloader_api::info::MemoryRegionKind;
use percore_kernel::Kernel;
use percore_kernel::mem::{self, heap};

use crate::harness::{Kind, Test};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("heap_many_sizes", Kind::Normal, heap_many_sizes),
    Test::new(
        "heap_large_vec_and_btreemap",
        Kind::Normal,
        heap_large_vec_and_btreemap,
    ),
    Test::new(
        "frames_unique_and_usable",
        Kind::Normal,
        frames_unique_and_usable,
    ),
];

/// Allocates blocks of many sizes and alignments, checks their contents
/// survive the other allocations, frees them in a scrambled order, and checks
/// the heap gives every byte back.
pub fn heap_many_sizes(_: &Kernel) -> Result<(), String> {
    let before = heap::used_bytes();
    let sizes: Vec<usize> = (0..12)
        .flat_map(|shift| [1usize << shift, (1 << shift) + 3, (1 << shift) * 3 / 2])
        .collect();
    let mut blocks: Vec<Box<[u8]>> = Vec::new();
    for round in 0..4u8 {
        for (i, &size) in sizes.iter().enumerate() {
            let fill = (i as u8).wrapping_mul(31).wrapping_add(round);
            blocks.push(alloc::vec![fill; size].into_boxed_slice());
        }
    }
    let mut aligned: Vec<Box<Aligned4K>> = (0..16)
        .map(|i| Box::new(Aligned4K([i as u8; 4096])))
        .collect();
    for (n, block) in blocks.iter().enumerate() {
        let i = n % sizes.len();
        let fill = (i as u8)
            .wrapping_mul(31)
            .wrapping_add((n / sizes.len()) as u8);
        if block.len() != sizes[i] || block.iter().any(|&b| b != fill) {
            return Err(format!("block {n} (size {}) was corrupted", sizes[i]));
        }
    }
    for (i, block) in aligned.iter().enumerate() {
        if (block.as_ref() as *const Aligned4K as usize) % 4096 != 0 {
            return Err(format!("4 KiB-aligned block {i} is misaligned"));
        }
        if block.0.iter().any(|&b| b != i as u8) {
            return Err(format!("4 KiB-aligned block {i} was corrupted"));
        }
    }
    // Free every other block first, then the rest: exercises coalescing.
    let mut odd = Vec::new();
    for (n, block) in blocks.into_iter().enumerate() {
        if n % 2 == 1 {
            odd.push(block);
        }
    }
    drop(odd);
    aligned.clear();
    drop(aligned);
    drop(sizes);
    let after = heap::used_bytes();
    if after != before {
        return Err(format!(
            "heap used {before} bytes before and {after} after freeing everything"
        ));
    }
    Ok(())
}

#[repr(align(4096))]
struct Aligned4K([u8; 4096]);

/// A 16 MiB `Vec` and a 100k-entry `BTreeMap`, checked and freed.
pub fn heap_large_vec_and_btreemap(_: &Kernel) -> Result<(), String> {
    let before = heap::used_bytes();
    let mut big: Vec<u64> = Vec::with_capacity(2 * 1024 * 1024);
    big.extend((0..2 * 1024 * 1024u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let sum = big.iter().fold(0u64, |acc, v| acc.wrapping_add(*v));
    let expected = (0..2 * 1024 * 1024u64).fold(0u64, |acc, i| {
        acc.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    });
    if sum != expected {
        return Err(String::from("large Vec contents changed"));
    }
    drop(big);

    let mut map = BTreeMap::new();
    for i in 0..100_000u64 {
        map.insert(i.wrapping_mul(7919) % 1_000_003, i);
    }
    if map.len() != 100_000 {
        return Err(format!(
            "BTreeMap has {} entries, expected 100000",
            map.len()
        ));
    }
    for i in (0..100_000u64).step_by(2) {
        if map.remove(&(i.wrapping_mul(7919) % 1_000_003)) != Some(i) {
            return Err(format!("BTreeMap lost key for {i}"));
        }
    }
    if map.len() != 50_000 || map.values().any(|v| v % 2 == 0) {
        return Err(String::from("BTreeMap removal removed the wrong entries"));
    }
    drop(map);
    let after = heap::used_bytes();
    if after != before {
        return Err(format!("heap used {before} bytes before and {after} after"));
    }
    Ok(())
}

/// Takes every free frame: none twice, none outside the bootloader's usable
/// regions or below 1 MiB; then frees them all and checks they come back.
pub fn frames_unique_and_usable(kernel: &Kernel) -> Result<(), String> {
    let usable: Vec<(u64, u64)> = kernel
        .boot_info
        .memory_regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .map(|r| (r.start, r.end))
        .collect();
    let top = usable.iter().map(|r| r.1).max().unwrap_or(0);
    let mut seen = alloc::vec![0u64; (top / 4096).div_ceil(64) as usize];
    let free_before = mem::with(|m| m.frames.free_frames()).map_err(|e| format!("{e:?}"))?;
    let taken = mem::with(|m| {
        let mut taken = Vec::new();
        while let Some(frame) = m.frames.allocate() {
            taken.push(frame);
        }
        taken
    })
    .map_err(|e| format!("{e:?}"))?;
    let mut problem = None;
    for frame in &taken {
        let addr = frame.0;
        let index = (addr / 4096) as usize;
        if addr < mem::frame::LOW_MEMORY_END {
            problem = Some(format!("frame {addr:#x} is below 1 MiB"));
        } else if !usable.iter().any(|&(s, e)| addr >= s && addr + 4096 <= e) {
            problem = Some(format!("frame {addr:#x} is outside every usable region"));
        } else if seen[index / 64] & (1 << (index % 64)) != 0 {
            problem = Some(format!("frame {addr:#x} handed out twice"));
        } else {
            seen[index / 64] |= 1 << (index % 64);
        }
        if problem.is_some() {
            break;
        }
    }
    let count = taken.len() as u64;
    let refreed = mem::with(|m| {
        for frame in taken {
            // SAFETY: each frame was just allocated above and is unused.
            unsafe { m.frames.free(frame) };
        }
        m.frames.free_frames()
    })
    .map_err(|e| format!("{e:?}"))?;
    if let Some(problem) = problem {
        return Err(problem);
    }
    if count != free_before {
        return Err(format!(
            "allocator said {free_before} frames were free but handed out {count}"
        ));
    }
    if count < 1000 {
        return Err(format!("only {count} frames were free"));
    }
    if refreed != free_before {
        return Err(format!(
            "{refreed} frames free after returning all, expected {free_before}"
        ));
    }
    // Recycled frames come back through the free list, still unique.
    let again = mem::with(|m| {
        let frames: Vec<_> = (0..1000).filter_map(|_| m.frames.allocate()).collect();
        let mut addrs: Vec<u64> = frames.iter().map(|f| f.0).collect();
        for frame in frames {
            // SAFETY: allocated just above, unused.
            unsafe { m.frames.free(frame) };
        }
        addrs.sort_unstable();
        addrs.dedup();
        addrs.len()
    })
    .map_err(|e| format!("{e:?}"))?;
    if again != 1000 {
        return Err(format!(
            "recycled frames were not unique ({again} distinct of 1000)"
        ));
    }
    percore_kernel::println!("frames: {count} free frames allocated once each and returned");
    Ok(())
}
