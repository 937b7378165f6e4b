//! Tests of the virtio-blk driver on machines with a disk (the host
//! attaches a raw image file and says what to expect through fw_cfg:
//! `opt/percore/expect-disk-bytes`, `-disk-queues`, `-disk-bad-sector`).
//!
//! The read/write test leaves a pattern in the image ([`pattern`], the same
//! formula as `tools/xtask/src/disk.rs`) and prints `disk-pattern OFFSET
//! LEN` for each range; after QEMU exits the host checks that the image
//! file holds exactly that.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::future::Future;
use core::sync::atomic::Ordering;
use core::time::Duration;

use futures_util::future::{Either, join_all, select};
use percore_kernel::arch::{CoreId, cpu};
use percore_kernel::drivers::pci;
use percore_kernel::drivers::virtio::blk::{self, BlkError, CHUNK, Disk};
use percore_kernel::reactor::{block_on, sleep, spawn_with};
use percore_kernel::{Kernel, println};

use crate::disk_bench::{self, Target};
use crate::harness::{Kind, Test};
use crate::reactor::{pinned, start_reactors};
use crate::smp::expectation;

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("disk_found_and_routed", Kind::Normal, found_and_routed),
    Test::new(
        "disk_read_write_every_core",
        Kind::Normal,
        read_write_every_core,
    ),
    Test::new("disk_bad_requests_are_errors", Kind::Normal, bad_requests),
    Test::new(
        "disk_requests_allocate_nothing",
        Kind::Normal,
        requests_allocate_nothing,
    ),
    Test::new(
        "disk_read_only_refuses_writes",
        Kind::Machine("disk-readonly"),
        read_only,
    ),
    Test::new(
        "disk_device_errors_reach_the_caller",
        Kind::Machine("disk-blkdebug"),
        device_errors,
    ),
];

/// Bytes of the disk each core's part of the read/write test owns.
const REGION: u64 = 256 * 1024;
/// Request sizes of the read/write test: 1 block to past 64 KiB, across
/// the bounce chunk's edge.
const SIZES: &[usize] = &[
    512,
    1024,
    1536,
    4096,
    8192,
    CHUNK - 512,
    CHUNK,
    CHUNK + 512,
    3 * CHUNK + 1024,
    64 * 1024,
    64 * 1024 + 512,
];
/// A hang guard (not a timing assertion): a request that takes this long
/// under TCG never completes.
const HANG: Duration = Duration::from_secs(60);

/// The byte the tests write at byte `offset` of the disk (see the module doc).
fn pattern(offset: u64) -> u8 {
    let block = offset / 512;
    (block.wrapping_mul(131) ^ (offset % 512).wrapping_mul(7) ^ 0x5A) as u8
}

fn disk() -> Result<&'static Disk, String> {
    start_reactors();
    blk::init().map_err(|e| format!("no block device: {e:?}"))
}

/// `future`, or an error if it has not finished after [`HANG`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> Result<T, String> {
    let future = core::pin::pin!(future);
    let timeout = core::pin::pin!(sleep(HANG));
    match select(future, timeout).await {
        Either::Left((value, _)) => Ok(value),
        Either::Right(_) => Err(format!("{what}: no answer within {HANG:?}")),
    }
}

/// The device, its queues and their MSI-X routing match the machine: one
/// queue per core (or as many as the host configured), queue k's MSI-X
/// entry k with a message whose destination is core k's APIC id (xAPIC or
/// x2APIC), read back from the device's table.
pub fn found_and_routed(_: &Kernel) -> Result<(), String> {
    let disk = disk()?;
    let bytes = disk.blocks() * u64::from(disk.block_size());
    let expected: Option<u64> =
        expectation("opt/percore/expect-disk-bytes").and_then(|s| s.parse().ok());
    if expected != Some(bytes) {
        return Err(format!("capacity {bytes} bytes, host says {expected:?}"));
    }
    let cores = cpu::online_cores();
    let offered: usize = expectation("opt/percore/expect-disk-queues")
        .and_then(|s| s.parse().ok())
        .unwrap_or(cores);
    if disk.queues().len() != offered.min(cores) {
        return Err(format!(
            "{} queues on {cores} cores, the device offers {offered}",
            disk.queues().len()
        ));
    }
    let table = pci::msix_table(disk.bdf()).ok_or("no MSI-X table mapped")?;
    if !table.enabled() {
        return Err(String::from("MSI-X is not enabled on the device"));
    }
    for index in 0..disk.queues().len() {
        let info = disk.queue_info(index).ok_or("no queue info")?;
        let core = CoreId(index as u16);
        if info.owner != core || info.msix_entry != index as u16 {
            return Err(format!("queue {index}: {info:?}"));
        }
        if info.target != Some((core, info.vector)) {
            return Err(format!(
                "queue {index}: its MSI-X entry targets {:?}, not core {core} vector {:#x}",
                info.target, info.vector
            ));
        }
        let (message, masked) = table.read(info.msix_entry).map_err(|e| format!("{e:?}"))?;
        let apic = cpu::apic_id(core).ok_or("no APIC id")?;
        let dest = (message.address >> 12) & 0xFF;
        if masked || message.address >> 20 != 0xFEE || dest != u64::from(apic) {
            return Err(format!(
                "queue {index}: entry {message:x?} (masked {masked}) is not for APIC id {apic}"
            ));
        }
    }
    for core in 0..cores {
        let core = CoreId(core as u16);
        if disk.queue_of(core) != core.index() % disk.queues().len() {
            return Err(format!("core {core} uses queue {}", disk.queue_of(core)));
        }
    }
    let listing = block_on(percore_kernel::shell::commands::execute("disk"));
    println!("{listing}");
    if !listing.contains("queues") || !listing.contains("0>c0/") {
        return Err(format!("`disk` printed:\n{listing}"));
    }
    Ok(())
}

/// Where each size's request goes in a core's region: consecutive blocks.
fn layout(base: u64) -> Vec<(u64, usize)> {
    let mut at = base;
    SIZES
        .iter()
        .map(|&size| {
            let here = at;
            at += size as u64;
            (here, size)
        })
        .collect()
}

/// Writes every size at once (several requests in flight), reads each
/// back and checks it: `invert` writes the pattern's complement.
async fn pass(disk: &Disk, base: u64, invert: bool) -> Result<(), String> {
    let bs = u64::from(disk.block_size());
    let expect = |offset: u64| pattern(offset) ^ if invert { 0xFF } else { 0 };
    let buffers: Vec<(u64, Vec<u8>)> = layout(base)
        .into_iter()
        .map(|(at, size)| (at, (0..size as u64).map(|i| expect(at + i)).collect()))
        .collect();
    let writes = buffers.iter().map(|(at, data)| disk.write(at / bs, data));
    for (result, (at, _)) in join_all(writes).await.into_iter().zip(&buffers) {
        result.map_err(|e| format!("write at byte {at}: {e:?}"))?;
    }
    disk.flush().await.map_err(|e| format!("flush: {e:?}"))?;
    let mut reads: Vec<(u64, Vec<u8>)> = buffers
        .iter()
        .map(|(at, data)| (*at, vec![0u8; data.len()]))
        .collect();
    let results = join_all(reads.iter_mut().map(|(at, buf)| disk.read(*at / bs, buf))).await;
    for (result, ((at, got), (_, want))) in results.into_iter().zip(reads.iter().zip(&buffers)) {
        result.map_err(|e| format!("read at byte {at}: {e:?}"))?;
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            return Err(format!(
                "byte {} read back {:#04x}, written {:#04x}",
                at + i as u64,
                got[i],
                want[i]
            ));
        }
    }
    Ok(())
}

/// Requests one core's part of the test submits: per pass, every size as
/// writes and reads (chunk by chunk) and one flush.
fn requests_per_core(disk: &Disk) -> u64 {
    let chunks: u64 = SIZES.iter().map(|s| s.div_ceil(CHUNK) as u64).sum();
    let flush = u64::from(disk.has_flush());
    2 * (2 * chunks + flush)
}

/// Every core at once writes, reads back and checks requests of many sizes
/// in its own region (twice: the complement of the pattern, then the
/// pattern the host checks in the image afterwards). Each queue then
/// counts exactly the requests of the cores that use it, every one of its
/// completions was handled on its owner core, and no interrupt arrived on
/// another core.
pub fn read_write_every_core(_: &Kernel) -> Result<(), String> {
    let disk = disk()?;
    let cores = cpu::online_cores();
    if REGION * cores as u64 > disk.blocks() * u64::from(disk.block_size()) {
        return Err(String::from("the disk is too small for the test"));
    }
    let queues = disk.queues();
    let before: Vec<(u64, u64, u64)> = queues
        .iter()
        .map(|q| {
            (
                q.stats.submitted.load(Ordering::SeqCst),
                q.stats.completed.load(Ordering::SeqCst),
                disk.completions_on(q.owner),
            )
        })
        .collect();
    let handles: Vec<_> = (0..cores as u16)
        .map(|core| {
            spawn_with(CoreId(core), pinned(), async move {
                let base = u64::from(core) * REGION;
                pass(disk, base, true).await?;
                pass(disk, base, false).await
            })
        })
        .collect();
    let results = block_on(within("the read/write passes", join_all(handles)))?;
    for (core, result) in results.into_iter().enumerate() {
        result.map_err(|e| format!("core {core}: {e}"))?;
    }
    let per_core = requests_per_core(disk);
    for (index, queue) in queues.iter().enumerate() {
        let users = (0..cores).filter(|c| c % queues.len() == index).count() as u64;
        let (submitted, completed, handled) = before[index];
        let counts = (
            queue.stats.submitted.load(Ordering::SeqCst) - submitted,
            queue.stats.completed.load(Ordering::SeqCst) - completed,
            disk.completions_on(queue.owner) - handled,
        );
        let want = users * per_core;
        if counts != (want, want, want) {
            return Err(format!(
                "queue {index} (core {}): submitted, completed, handled on its core = {counts:?}, expected {want} each",
                queue.owner
            ));
        }
        let foreign = queue.stats.foreign_interrupts.load(Ordering::SeqCst);
        if foreign != 0 || queue.stats.interrupts.load(Ordering::SeqCst) == 0 {
            return Err(format!(
                "queue {index}: {foreign} interrupts on another core than {}, {} in all",
                queue.owner,
                queue.stats.interrupts.load(Ordering::SeqCst)
            ));
        }
    }
    let written: u64 = SIZES.iter().map(|&s| s as u64).sum();
    for core in 0..cores as u64 {
        println!("disk-pattern {} {written}", core * REGION);
    }
    Ok(())
}

/// 4 KiB blocks at the end of the disk the allocation test uses (away
/// from the read/write test's regions, which the host checks afterwards).
const ALLOCATION_TEST_BLOCKS: u64 = 256;

/// The I/O path allocates nothing: 32 requests in flight on core 0 (reads
/// checking the data written before, and writes), counted by the heap's
/// allocation counter, after one unmeasured pass (see
/// `disk_bench::allocations_of_requests`, which the benchmark runs too).
pub fn requests_allocate_nothing(_: &Kernel) -> Result<(), String> {
    let disk = disk()?;
    let target = Target::tail(disk, ALLOCATION_TEST_BLOCKS);
    let failed = block_on(within("stamping the blocks", target.stamp_all()))?;
    if failed > 0 {
        return Err(format!("{failed} writes of the stamps failed"));
    }
    let (allocations, requests, failed) = disk_bench::allocations_of_requests(target);
    println!("{requests} requests, {allocations} heap allocations");
    if failed > 0 {
        return Err(format!(
            "{failed} of the {requests} requests failed or read wrong data"
        ));
    }
    match allocations {
        0 => Ok(()),
        n => Err(format!("{n} heap allocations during {requests} requests")),
    }
}

/// Out-of-range blocks and lengths that are not whole blocks are refused
/// with errors; the device works afterwards.
pub fn bad_requests(_: &Kernel) -> Result<(), String> {
    let disk = disk()?;
    let bs = disk.block_size() as usize;
    let blocks = disk.blocks();
    let capacity = blocks;
    block_on(within("bad requests", async {
        let mut one = vec![0u8; bs];
        let mut two = vec![0u8; 2 * bs];
        let checks: [(&str, Result<(), BlkError>, BlkError); 7] = [
            (
                "read past the end",
                disk.read(blocks, &mut one).await,
                BlkError::OutOfRange {
                    lba: blocks,
                    blocks: 1,
                    capacity,
                },
            ),
            (
                "read across the end",
                disk.read(blocks - 1, &mut two).await,
                BlkError::OutOfRange {
                    lba: blocks - 1,
                    blocks: 2,
                    capacity,
                },
            ),
            (
                "write at u64::MAX",
                disk.write(u64::MAX, &one).await,
                BlkError::OutOfRange {
                    lba: u64::MAX,
                    blocks: 1,
                    capacity,
                },
            ),
            (
                "empty read",
                disk.read(0, &mut []).await,
                BlkError::BadLength {
                    len: 0,
                    block_size: bs as u32,
                },
            ),
            (
                "read of 100 bytes",
                disk.read(0, &mut one[..100]).await,
                BlkError::BadLength {
                    len: 100,
                    block_size: bs as u32,
                },
            ),
            (
                "write of a block and a byte",
                disk.write(0, &vec![0u8; bs + 1]).await,
                BlkError::BadLength {
                    len: bs + 1,
                    block_size: bs as u32,
                },
            ),
            (
                "write of half a block",
                disk.write(1, &one[..bs / 2]).await,
                BlkError::BadLength {
                    len: bs / 2,
                    block_size: bs as u32,
                },
            ),
        ];
        for (what, got, want) in checks {
            if got != Err(want) {
                return Err(format!("{what}: {got:?}, expected {want:?}"));
            }
        }
        disk.read(blocks - 2, &mut two)
            .await
            .map_err(|e| format!("the last two blocks after the bad requests: {e:?}"))
    }))?
}

/// A read-only drive: the device says so, writes are refused with an
/// error, reads work (the image is zero-filled).
pub fn read_only(_: &Kernel) -> Result<(), String> {
    let disk = disk()?;
    if !disk.read_only() {
        return Err(String::from("the device does not say it is read-only"));
    }
    block_on(within("read-only", async {
        let block = vec![0xA5u8; disk.block_size() as usize];
        match disk.write(0, &block).await {
            Err(BlkError::ReadOnly) => {}
            other => return Err(format!("write on a read-only disk: {other:?}")),
        }
        let mut data = vec![0xFFu8; 8192];
        disk.read(0, &mut data)
            .await
            .map_err(|e| format!("read: {e:?}"))?;
        match data.iter().all(|&b| b == 0) {
            true => Ok(()),
            false => Err(String::from("a zero-filled image read back non-zero")),
        }
    }))?
}

/// QEMU's blkdebug fails every request touching the bad sector with EIO:
/// those requests (alone, in flight with good ones, a long one across it,
/// a write) end in `BlkError::Io`, the good ones complete, the queue counts
/// the errors, and the device stays in service.
pub fn device_errors(_: &Kernel) -> Result<(), String> {
    let disk = disk()?;
    let bad_sector: u64 = expectation("opt/percore/expect-disk-bad-sector")
        .and_then(|s| s.parse().ok())
        .ok_or("the host named no bad sector")?;
    let bs = u64::from(disk.block_size());
    let bad = bad_sector * blk::SECTOR / bs;
    let errors = || -> u64 {
        disk.queues()
            .iter()
            .map(|q| q.stats.errors.load(Ordering::SeqCst))
            .sum()
    };
    let errors_before = errors();
    block_on(within("requests around a failing sector", async {
        let mut alone = vec![0u8; bs as usize];
        match disk.read(bad, &mut alone).await {
            Err(BlkError::Io) => {}
            other => return Err(format!("read of the bad block: {other:?}")),
        }
        // Good reads on both sides, in flight together with a bad one.
        let mut good: Vec<(u64, Vec<u8>)> = (1..=8)
            .flat_map(|d| [bad - 8 * d, bad + 8 * d])
            .map(|lba| (lba, vec![0u8; bs as usize]))
            .collect();
        let mut bad_buf = vec![0u8; bs as usize];
        let good_reads = join_all(good.iter_mut().map(|(lba, buf)| disk.read(*lba, buf)));
        let (good_results, bad_result) =
            futures_util::future::join(good_reads, disk.read(bad, &mut bad_buf)).await;
        if bad_result != Err(BlkError::Io) {
            return Err(format!("the bad read among good ones: {bad_result:?}"));
        }
        if let Some(failed) = good_results.iter().find(|r| r.is_err()) {
            return Err(format!("a good read next to the bad one: {failed:?}"));
        }
        let mut long = vec![0u8; 64 * 1024];
        match disk.read(bad - 4, &mut long).await {
            Err(BlkError::Io) => {}
            other => return Err(format!("a 64 KiB read across the bad block: {other:?}")),
        }
        match disk.write(bad, &alone).await {
            Err(BlkError::Io) => {}
            other => return Err(format!("a write of the bad block: {other:?}")),
        }
        disk.read(bad + 1, &mut alone)
            .await
            .map_err(|e| format!("the block after the bad one: {e:?}"))
    }))??;
    let counted = errors() - errors_before;
    if counted < 4 {
        return Err(format!("{counted} errors counted for 4 failed requests"));
    }
    if let Some(error) = disk.failure() {
        return Err(format!(
            "an I/O error took the device out of service: {error}"
        ));
    }
    Ok(())
}
