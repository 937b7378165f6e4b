//! The four workload cases the design is built for, as one in-kernel
//! benchmark (`cargo xtask bench cases [--smp N]`: release kernel, the
//! medians of three boots). Never run by `cargo xtask test`.
//!
//! 1. fast delivery: I/O task → CPU task → I/O task, all on one core, then
//!    each stage on its own core over the rings; each message is one boxed
//!    buffer modified in place by every stage (only the pointer moves);
//! 2. load balancing: CPU-bound tasks of three priorities arrive on core 0;
//!    time until every core is busy, per-priority latency, migrations;
//! 3. publisher: one topic, a subscriber on every other core;
//! 4. subscriber: one producer per core into one consumer, and the
//!    consumer's queue moving to another core mid-stream, with a check that
//!    no message was lost or duplicated across the move.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use percore_kernel::arch::{CoreId, clock, cpu};
use percore_kernel::ipc::{channel, topic};
use percore_kernel::measure::percentile;
use percore_kernel::reactor::{SpawnOptions, block_on, priority, spawn_with, yield_now};
use percore_kernel::time::cycles_to_ns;
use percore_kernel::{Kernel, println};

use crate::harness::{Kind, Test};
use crate::reactor::{busy_us, start_reactors, total};

/// This file's benchmark.
pub const TESTS: &[Test] = &[Test::new("bench_cases", Kind::Bench, bench_cases)];

fn line(name: &str, value: u64, unit: &str) {
    println!("bench {name} {value} {unit}");
}

fn per_s(count: u64, cycles: u64) -> u64 {
    count * clock::hz() / cycles.max(1)
}

/// p50 and p99 of `samples` (cycles), in ns.
fn p50_p99(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    (
        cycles_to_ns(percentile(samples, 50)),
        cycles_to_ns(percentile(samples, 99)),
    )
}

pub fn bench_cases(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let n = cpu::online_cores() as u16;
    println!("== workload cases: {n} cores");
    fast_delivery(n)?;
    load_balancing(n);
    publisher(n)?;
    subscriber(n)?;
    Ok(())
}

const PIPELINE: u64 = 20_000;

/// One message: the stamp of its creation and a payload every stage
/// rewrites in place.
struct Buffer {
    born: u64,
    payload: [u64; 8],
}

/// The pipeline with its stages on `cores`: (cycles for all, latencies).
fn pipeline(cores: [CoreId; 3]) -> Result<(u64, Vec<u64>), String> {
    let pinned = SpawnOptions::new(priority(40)).pinned();
    let (Ok((mut to_cpu, mut at_cpu)), Ok((mut to_out, mut at_out))) = (
        channel::channel::<Box<Buffer>>(256),
        channel::channel::<Box<Buffer>>(256),
    ) else {
        return Err(String::from("channel"));
    };
    let sink = spawn_with(cores[2], pinned, async move {
        let mut latencies = Vec::with_capacity(PIPELINE as usize);
        while let Some(buffer) = at_out.recv().await {
            latencies.push(clock::cycles() - buffer.born);
            // The output stage consumes the message (here: checks it).
            if buffer.payload[7] != buffer.payload[0] * 8 {
                return Err(String::from("payload not transformed"));
            }
        }
        Ok(latencies)
    });
    let worker = spawn_with(cores[1], pinned, async move {
        while let Some(mut buffer) = at_cpu.recv().await {
            let base = buffer.payload[0];
            for (i, word) in buffer.payload.iter_mut().enumerate() {
                *word = base * (i as u64 + 1);
            }
            to_out.send(buffer).await;
        }
    });
    let start = clock::cycles();
    let source = spawn_with(cores[0], pinned, async move {
        for i in 0..PIPELINE {
            let mut buffer = Box::new(Buffer {
                born: clock::cycles(),
                payload: [0; 8],
            });
            buffer.payload[0] = i;
            to_cpu.send(buffer).await;
            if i % 64 == 0 {
                yield_now().await;
            }
        }
    });
    let latencies = block_on(async {
        source.await;
        worker.await;
        sink.await
    })?;
    Ok((clock::cycles() - start, latencies))
}

/// Doorbell IPIs and bus messages sent so far, over every core.
fn bus_traffic() -> (u64, u64) {
    let doorbells = (0..cpu::core_count() as u16)
        .filter_map(|c| cpu::stats(CoreId(c)))
        .map(|s| s.doorbells.load(Ordering::SeqCst))
        .sum();
    (doorbells, total(|s| s.messages_out.load(Ordering::SeqCst)))
}

fn fast_delivery(n: u16) -> Result<(), String> {
    let one = CoreId(1 % n);
    let (single_cycles, mut single) = pipeline([one, one, one])?;
    let spread = [CoreId(1 % n), CoreId(2 % n), CoreId(3 % n)];
    let before = bus_traffic();
    let (spread_cycles, mut multi) = pipeline(spread)?;
    let after = bus_traffic();
    let per_1000 = |count: u64| count * 1000 / PIPELINE;
    let (doorbells, messages) = (per_1000(after.0 - before.0), per_1000(after.1 - before.1));
    let (s50, s99) = p50_p99(&mut single);
    let (m50, m99) = p50_p99(&mut multi);
    let (s_rate, m_rate) = (
        per_s(PIPELINE, single_cycles),
        per_s(PIPELINE, spread_cycles),
    );
    println!("case 1, fast delivery (I/O -> CPU -> I/O, {PIPELINE} messages):");
    println!("  one core:    {s_rate:>9} msgs/s  latency p50 {s50:>8} ns  p99 {s99:>8} ns");
    println!("  three cores: {m_rate:>9} msgs/s  latency p50 {m50:>8} ns  p99 {m99:>8} ns");
    println!(
        "  three cores / one core: throughput x{}.{:02}",
        m_rate / s_rate.max(1),
        m_rate * 100 / s_rate.max(1) % 100
    );
    println!(
        "  three cores, per 1000 messages: {messages} bus messages (wakes), {doorbells} doorbell IPIs"
    );
    line(
        "fast_delivery_three_cores_bus_msgs_per_1000",
        messages,
        "count",
    );
    line(
        "fast_delivery_three_cores_doorbells_per_1000",
        doorbells,
        "count",
    );
    line("fast_delivery_one_core", s_rate, "msgs/s");
    line("fast_delivery_one_core_p50", s50, "ns");
    line("fast_delivery_one_core_p99", s99, "ns");
    line("fast_delivery_three_cores", m_rate, "msgs/s");
    line("fast_delivery_three_cores_p50", m50, "ns");
    line("fast_delivery_three_cores_p99", m99, "ns");
    line(
        "fast_delivery_ratio_x100",
        m_rate * 100 / s_rate.max(1),
        "count",
    );
    Ok(())
}

const ARRIVALS: usize = 600;
/// Clock cycles at which each core first ran a balancing task.
static FIRST_RUN: [AtomicU64; 64] = [const { AtomicU64::new(u64::MAX) }; 64];

fn load_balancing(n: u16) {
    for first in &FIRST_RUN {
        first.store(u64::MAX, Ordering::SeqCst);
    }
    let migrations = || total(|s| s.migrated_in.load(Ordering::SeqCst));
    let before = migrations();
    let levels = [10u8, 32, 50];
    let start = clock::cycles();
    let handles: Vec<_> = (0..ARRIVALS)
        .map(|i| {
            let level = levels[i % 3];
            let spawned = clock::cycles();
            let task = spawn_with(CoreId(0), SpawnOptions::new(priority(level)), async move {
                let core = cpu::core_id().index();
                FIRST_RUN[core].fetch_min(clock::cycles(), Ordering::Relaxed);
                busy_us(100);
                yield_now().await;
                busy_us(100);
                clock::cycles() - spawned
            });
            (level, task)
        })
        .collect();
    let mut latency: [Vec<u64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    block_on(async {
        for (level, task) in handles {
            let slot = levels.iter().position(|&l| l == level).unwrap_or(0);
            latency[slot].push(task.await);
        }
    });
    let all_busy = FIRST_RUN[..n as usize]
        .iter()
        .map(|f| f.load(Ordering::SeqCst))
        .max()
        .unwrap_or(u64::MAX);
    let to_all_busy_us = if all_busy == u64::MAX {
        u64::MAX
    } else {
        cycles_to_ns(all_busy.saturating_sub(start)) / 1_000
    };
    let migrated = migrations() - before;
    println!("case 2, load balancing ({ARRIVALS} tasks of levels 10/32/50 arrive on core 0):");
    println!("  every core busy after {to_all_busy_us} us; {migrated} migrations");
    line("balance_all_busy", to_all_busy_us, "us");
    line("balance_migrations", migrated, "count");
    for (level, samples) in levels.iter().zip(&mut latency) {
        let (p50, p99) = p50_p99(samples);
        println!("  level {level:>2}: spawn to done p50 {p50:>9} ns  p99 {p99:>9} ns");
        line(&format!("balance_level{level}_p50"), p50, "ns");
        line(&format!("balance_level{level}_p99"), p99, "ns");
    }
}

const PUBLISHED: u64 = 20_000;

fn publisher(n: u16) -> Result<(), String> {
    let pinned = SpawnOptions::new(priority(40)).pinned();
    let subscribers: Vec<_> = (1..n.max(2))
        .map(|c| {
            spawn_with(CoreId(c % n), pinned, async move {
                // The topic may not exist yet: ask again until it does.
                let mut sub = loop {
                    match topic::subscribe::<u64>(CoreId(0), 90).await {
                        Ok(sub) => break sub,
                        Err(topic::TopicError::NoSuchTopic) => yield_now().await,
                        Err(_) => return (0, 0),
                    }
                };
                let mut count = 0;
                while sub.recv().await.is_some() {
                    count += 1;
                }
                (count, clock::cycles())
            })
        })
        .collect();
    let (elapsed, publish_end) = block_on(spawn_with(CoreId(0), pinned, async move {
        let Ok(mut publisher) = topic::create::<u64>(90, 256) else {
            return (0, 0);
        };
        let wanted = usize::from(n.max(2)) - 1;
        while publisher.subscribers() < wanted {
            yield_now().await;
        }
        let start = clock::cycles();
        for i in 0..PUBLISHED {
            publisher.publish(i).await;
        }
        let end = clock::cycles();
        drop(publisher);
        (end - start, end)
    }));
    let results: Vec<(u64, u64)> = block_on(async {
        let mut results = Vec::new();
        for s in subscribers {
            results.push(s.await);
        }
        results
    });
    if results.iter().any(|&(count, _)| count != PUBLISHED) {
        return Err(format!("subscribers read {results:?} of {PUBLISHED}"));
    }
    let last = results
        .iter()
        .map(|&(_, at)| at)
        .max()
        .unwrap_or(publish_end);
    let lag_us = cycles_to_ns(last.saturating_sub(publish_end)) / 1_000;
    let delivered = per_s(
        PUBLISHED * results.len() as u64,
        elapsed + (last - publish_end),
    );
    println!(
        "case 3, publisher ({PUBLISHED} values to {} subscribers): {delivered} deliveries/s, slowest subscriber done {lag_us} us after the last publish",
        results.len()
    );
    line("publisher_deliveries", delivered, "msgs/s");
    line("publisher_slowest_lag", lag_us, "us");
    Ok(())
}

const PER_PRODUCER: u64 = 10_000;

fn subscriber(n: u16) -> Result<(), String> {
    let pinned = SpawnOptions::new(priority(40)).pinned();
    let (tx, mut rx) = channel::channel::<(u16, u64)>(1024).map_err(|e| format!("{e:?}"))?;
    let producers: Vec<_> = (0..n)
        .map(|c| {
            let mut tx = tx.clone();
            spawn_with(CoreId(c), pinned, async move {
                for seq in 0..PER_PRODUCER {
                    tx.send((c, seq)).await;
                }
            })
        })
        .collect();
    drop(tx);
    let total_messages = PER_PRODUCER * u64::from(n);
    let (first, second) = (CoreId(0), CoreId(n.saturating_sub(1)));
    let start = clock::cycles();
    // The consumer reads half the stream on one core, then its queue (the
    // receiver) moves to a task on another core, which reads the rest.
    let (next, rx) = block_on(spawn_with(first, pinned, async move {
        let mut next = alloc::vec![0u64; usize::from(n)];
        for _ in 0..total_messages / 2 {
            let Some((from, seq)) = rx.recv().await else {
                break;
            };
            if next[usize::from(from)] == seq {
                next[usize::from(from)] += 1;
            }
        }
        (next, rx)
    }));
    let next = block_on(spawn_with(second, pinned, async move {
        let mut next = next;
        let mut rx = rx;
        while let Some((from, seq)) = rx.recv().await {
            if next[usize::from(from)] == seq {
                next[usize::from(from)] += 1;
            }
        }
        next
    }));
    let elapsed = clock::cycles() - start;
    block_on(async {
        for p in producers {
            p.await;
        }
    });
    let exact = next.iter().all(|&count| count == PER_PRODUCER);
    let rate = per_s(total_messages, elapsed);
    println!(
        "case 4, subscriber ({n} producers -> 1 consumer, its queue moved from core {first} to core {second} mid-stream): {rate} msgs/s; every message once and in order: {exact}"
    );
    line("subscriber_many_to_one", rate, "msgs/s");
    if !exact {
        return Err(format!("per-producer counts after the move: {next:?}"));
    }
    Ok(())
}
