//! Benchmark of the intercore bus against the raw `percore-ring` SPSC ring
//! underneath it: Ping/Pong round trip (p50/p99) and one-way throughput,
//! unbatched and batched. Two threads pinned to cores 0 and 1 stand in for
//! two cores. Every figure is the median of `PERCORE_BENCH_REPS` (default 5)
//! repetitions; `PERCORE_BENCH_SCALE` scales message counts.
//!
//! Run with `cargo bench -p percore-proto`. Without `--bench` (for example
//! under `cargo test --all-targets`) it does a tiny smoke run only.

use std::hint::black_box;
use std::thread;
use std::time::Instant;

use percore_proto::{Bus, CoreId, Endpoint, Message, TaskRef};
use percore_ring::spsc::{self, Consumer, Producer};

const CAPACITY: usize = 1024;
const BATCH: usize = 32;

use percore_benchkit::{Table, bench_line, load_average, median_of as med, percentile, pin};

fn ping(seq: u64) -> Message {
    Message::Ping { seq, sent_at: seq }
}

/// Sorted round-trip times (ns) of `n` Ping/Pong exchanges; `client`
/// sends a ping and spins for the pong, `server` answers pings until
/// it has answered `n`.
fn round_trips(
    n: usize,
    mut client: impl FnMut(u64) + Send,
    server: impl FnOnce() + Send,
) -> Vec<u64> {
    thread::scope(|s| {
        s.spawn(|| {
            pin(1);
            server();
        });
        pin(0);
        let mut rtts: Vec<u64> = (0..n as u64)
            .map(|seq| {
                let t = Instant::now();
                client(seq);
                t.elapsed().as_nanos() as u64
            })
            .collect();
        rtts.sort_unstable();
        rtts
    })
}

fn rtt_bus(n: usize) -> Vec<u64> {
    let mut eps = Bus::new(2, CAPACITY).unwrap();
    let (mut b, mut a) = (eps.pop().unwrap(), eps.pop().unwrap());
    let client = move |seq| {
        while a.send(CoreId(1), ping(seq)).is_err() {}
        let mut got = false;
        while !got {
            a.drain(1, |_, m| {
                got = matches!(m, Message::Pong { seq: s, .. } if s == seq)
            });
        }
    };
    round_trips(n, client, move || rtt_bus_server(&mut b, n))
}

/// Answers `n` pings with pongs (the reply is sent after `drain` returns,
/// because the drain callback borrows the endpoint).
fn rtt_bus_server(b: &mut Endpoint, n: usize) {
    let mut answered = 0;
    while answered < n {
        let mut pong = None;
        b.drain(1, |_, m| {
            if let Message::Ping { seq, sent_at } = m {
                pong = Some(Message::Pong { seq, sent_at });
            }
        });
        if let Some(p) = pong {
            while b.send(CoreId(0), p).is_err() {}
            answered += 1;
        }
    }
}

fn rtt_raw(n: usize) -> Vec<u64> {
    let (mut to_b, mut b_rx): (Producer<Message>, Consumer<Message>) =
        spsc::channel(CAPACITY).unwrap();
    let (mut to_a, mut a_rx) = spsc::channel::<Message>(CAPACITY).unwrap();
    let client = move |seq| {
        while to_b.try_push(ping(seq)).is_err() {}
        loop {
            if let Ok(Message::Pong { seq: s, .. }) = a_rx.try_pop()
                && s == seq
            {
                break;
            }
        }
    };
    let server = move || {
        for _ in 0..n {
            let m = loop {
                if let Ok(m) = b_rx.try_pop() {
                    break m;
                }
            };
            if let Message::Ping { seq, sent_at } = m {
                while to_a.try_push(Message::Pong { seq, sent_at }).is_err() {}
            }
        }
    };
    round_trips(n, client, server)
}

/// How a one-way run pushes messages.
#[derive(Clone, Copy)]
enum Mode {
    /// `Endpoint::send`, one doorbell check per message.
    BusSend,
    /// `Endpoint::send_batch` of `BATCH`, one doorbell check per batch.
    BusBatch,
    /// Raw ring `try_push` of the `Copy` message.
    RawPush,
    /// Raw ring, in place: `write_chunk_uninit(1)` then fill.
    RawChunk1,
    /// Raw ring, in place: `write_chunk_uninit(BATCH)` then fill.
    RawChunkBatch,
}

fn wake(i: u64) -> Message {
    Message::Wake { task: TaskRef(i) }
}

/// One-way throughput (messages/s) of `n` messages from core 0 to core 1.
fn one_way(n: u64, mode: Mode) -> f64 {
    match mode {
        Mode::BusSend | Mode::BusBatch => one_way_bus(n, matches!(mode, Mode::BusBatch)),
        _ => one_way_raw(n, mode),
    }
}

fn one_way_bus(n: u64, batched: bool) -> f64 {
    let mut eps = Bus::new(2, CAPACITY).unwrap();
    let (mut rx, mut tx) = (eps.pop().unwrap(), eps.pop().unwrap());
    let t = Instant::now();
    thread::scope(|s| {
        s.spawn(|| {
            pin(1);
            let mut got = 0u64;
            while got < n {
                got += rx.drain(256, |_, m| {
                    black_box(m);
                }) as u64;
            }
        });
        pin(0);
        let mut i = 0;
        let mut batch = [wake(0); BATCH];
        while i < n {
            if batched {
                let k = BATCH.min((n - i) as usize);
                for (j, m) in batch[..k].iter_mut().enumerate() {
                    *m = wake(i + j as u64);
                }
                let b = tx.send_batch(CoreId(1), &batch[..k]).unwrap();
                i += b.sent as u64;
            } else if tx.send(CoreId(1), wake(i)).is_ok() {
                i += 1;
            }
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn one_way_raw(n: u64, mode: Mode) -> f64 {
    let (mut tx, mut rx) = spsc::channel::<Message>(CAPACITY).unwrap();
    let t = Instant::now();
    thread::scope(|s| {
        s.spawn(|| {
            pin(1);
            let mut got = 0u64;
            while got < n {
                let k = rx.slots().min(256);
                if let Ok(chunk) = rx.read_chunk(k) {
                    black_box(chunk.as_slices());
                    chunk.commit_all();
                    got += k as u64;
                }
            }
        });
        pin(0);
        let mut i = 0;
        while i < n {
            i += match mode {
                Mode::RawPush => tx.try_push(wake(i)).map_or(0, |()| 1),
                Mode::RawChunk1 => tx
                    .write_chunk_uninit(1)
                    .map_or(0, |c| c.fill_from_iter([wake(i)]) as u64),
                _ => {
                    let k = (BATCH as u64).min(n - i) as usize;
                    tx.write_chunk_uninit(k)
                        .map_or(0, |c| c.fill_from_iter((i..i + k as u64).map(wake)) as u64)
                }
            };
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = std::env::var("PERCORE_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(1.0);
    let reps = match full {
        true => std::env::var("PERCORE_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5usize)
            .max(1),
        false => 1,
    };
    let count = |n: f64| {
        if full {
            ((n * scale) as u64).max(1000)
        } else {
            1000
        }
    };
    let (rtts, msgs) = (count(100_000.0) as usize, count(2_000_000.0));
    println!(
        "percore-proto bench: median of {reps} repetitions, threads pinned to cores 0 and 1; load average {}",
        load_average()
    );
    if !full {
        println!("(smoke run: pass --bench, as `cargo bench` does, for real figures)");
    }

    let [bus50, bus99] = med(reps, || {
        let r = rtt_bus(rtts);
        [percentile(&r, 0.5), percentile(&r, 0.99)]
    });
    let [raw50, raw99] = med(reps, || {
        let r = rtt_raw(rtts);
        [percentile(&r, 0.5), percentile(&r, 0.99)]
    });
    let tput = |mode| med(reps, || [one_way(msgs, mode)])[0];
    let raw_push = tput(Mode::RawPush);
    let rows = [
        ("rtt_p50", bus50, "raw_spsc", raw50, "ns"),
        ("rtt_p99", bus99, "raw_spsc", raw99, "ns"),
        (
            "oneway_send",
            tput(Mode::BusSend),
            "raw_try_push",
            raw_push,
            "msgs/s",
        ),
        (
            "oneway_batch32",
            tput(Mode::BusBatch),
            "raw_chunk32",
            tput(Mode::RawChunkBatch),
            "msgs/s",
        ),
        (
            "raw_try_push",
            raw_push,
            "raw_chunk1",
            tput(Mode::RawChunk1),
            "msgs/s",
        ),
    ];
    println!();
    let mut table = Table::new(&[
        "row",
        "bus",
        "raw ring row",
        "raw ring value",
        "bus/raw",
        "unit",
    ]);
    for (name, ours, peer, theirs, unit) in rows {
        table.row(vec![
            name.into(),
            format!("{ours:.4e}"),
            peer.into(),
            format!("{theirs:.4e}"),
            format!("{:.2}", ours / theirs),
            unit.into(),
        ]);
    }
    table.print();
    println!("load average after: {}", load_average());
    println!();
    for (name, ours, peer, theirs, unit) in rows {
        println!("{}", bench_line(name, ours, Some((peer, theirs)), unit));
    }
}
