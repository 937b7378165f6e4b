//! `cargo bench -p percore-ring`: percore's rings against the peer crates,
//! side by side in one run. Own harness (no criterion): every figure is the
//! median of `PERCORE_BENCH_REPS` (default 5) repetitions. Threads that the
//! issue asks to pin are pinned to cores 0 and 1 with `sched_setaffinity`.
//!
//! Output: a detailed table per row, a summary table with the ratio
//! percore / best peer, and one machine-readable line per row:
//! `bench <row> <percore> <best_peer_name> <best_peer> <unit>`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use percore_ring::{mpsc, spmc, spsc};

// ---------------------------------------------------------------- harness

fn pin(core: usize) {
    // SAFETY: `cpu_set_t` is plain data; zeroed is an empty set, CPU_SET only
    // writes inside it, and sched_setaffinity(0, ..) affects this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn reps() -> usize {
    std::env::var("PERCORE_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `f` `reps` times and returns the median of each of its outputs.
fn med<const K: usize>(mut f: impl FnMut() -> [f64; K]) -> [f64; K] {
    let runs: Vec<[f64; K]> = (0..reps()).map(|_| f()).collect();
    std::array::from_fn(|k| median(runs.iter().map(|r| r[k]).collect()))
}

struct Row {
    name: String,
    unit: &'static str,
    ours: f64,
    peers: Vec<(&'static str, f64)>,
}

impl Row {
    fn higher_is_better(&self) -> bool {
        self.unit.ends_with("/s")
    }
    fn best_peer(&self) -> (&'static str, f64) {
        let hib = self.higher_is_better();
        self.peers
            .iter()
            .copied()
            .max_by(|a, b| {
                if hib {
                    a.1.partial_cmp(&b.1)
                } else {
                    b.1.partial_cmp(&a.1)
                }
                .unwrap()
            })
            .unwrap_or(("none", f64::NAN))
    }
}

fn print_row(row: &Row) {
    let fmt = |v: f64| {
        if row.higher_is_better() {
            format!("{:.1}M", v / 1e6)
        } else {
            format!("{v:.0}")
        }
    };
    let peers: Vec<String> = row
        .peers
        .iter()
        .map(|(n, v)| format!("{n}={}", fmt(*v)))
        .collect();
    println!(
        "  {:<24} percore={}  {}  [{}]",
        row.name,
        fmt(row.ours),
        peers.join("  "),
        row.unit
    );
}

// ---------------------------------------------------------------- messages

trait Msg: Send + Sync + Copy + Default + 'static {
    fn new(i: u64) -> Self;
    fn val(&self) -> u64;
}

impl Msg for u64 {
    #[inline(always)]
    fn new(i: u64) -> Self {
        i
    }
    #[inline(always)]
    fn val(&self) -> u64 {
        *self
    }
}

/// A 64-byte message (one cache line of payload).
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Msg64([u64; 8]);

impl Msg for Msg64 {
    #[inline(always)]
    fn new(i: u64) -> Self {
        Msg64([i; 8])
    }
    #[inline(always)]
    fn val(&self) -> u64 {
        self.0[7]
    }
}

/// Expected checksum of the values `0..n`.
fn sum_to(n: u64) -> u64 {
    n * (n - 1) / 2
}

// ---------------------------------------------------------------- SPSC

/// Producer on core 0 pushes `n` messages, consumer on core 1 pops them;
/// returns messages per second.
fn spsc_tp<T: Msg, P: Send, C: Send>(
    n: u64,
    (mut tx, mut rx): (P, C),
    push: impl Fn(&mut P, T) -> Result<(), T> + Sync,
    pop: impl Fn(&mut C) -> Option<T> + Sync,
) -> f64 {
    let (push, pop) = (&push, &pop);
    let start = Instant::now();
    let sum = thread::scope(|s| {
        s.spawn(move || {
            pin(0);
            for i in 0..n {
                let mut v = T::new(i);
                while let Err(back) = push(&mut tx, v) {
                    v = back;
                    std::hint::spin_loop();
                }
            }
        });
        s.spawn(move || {
            pin(1);
            let mut sum = 0u64;
            let mut got = 0;
            while got < n {
                match pop(&mut rx) {
                    Some(v) => {
                        sum = sum.wrapping_add(v.val());
                        got += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
            sum
        })
        .join()
        .unwrap()
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sum, sum_to(n));
    n as f64 / secs
}

fn disruptor_spsc_tp<T: Msg>(n: u64) -> f64 {
    use disruptor::{ProcessorSettings as _, Producer as _};
    let done = Arc::new(AtomicU64::new(u64::MAX));
    let d2 = done.clone();
    let mut sum = 0u64;
    let mut producer =
        disruptor::build_single_producer(1024, T::default, disruptor::BusySpinWithSpinLoopHint)
            .pin_at_core(1)
            .handle_events_with(move |e: &T, seq, _| {
                sum = sum.wrapping_add(e.val());
                if seq as u64 == n - 1 {
                    d2.store(sum, Ordering::Release);
                }
            })
            .build();
    let secs = thread::scope(|s| {
        s.spawn(|| {
            pin(0);
            let start = Instant::now();
            for i in 0..n {
                producer.publish(|e| *e = T::new(i));
            }
            while done.load(Ordering::Acquire) == u64::MAX {
                std::hint::spin_loop();
            }
            start.elapsed().as_secs_f64()
        })
        .join()
        .unwrap()
    });
    assert_eq!(done.load(Ordering::Relaxed), sum_to(n));
    drop(producer);
    n as f64 / secs
}

fn spsc_rows<T: Msg>(label: &str, n: u64) -> Row {
    const CAP: usize = 1024;
    let [ours, rtrb, cbq, ringbuf, heapless, disruptor] = med(|| {
        use ringbuf::traits::{Consumer as _, Producer as _, Split as _};
        let ours = spsc_tp::<T, _, _>(
            n,
            spsc::channel(CAP).unwrap(),
            |p, v| p.try_push(v).map_err(|e| e.into_inner()),
            |c| c.try_pop().ok(),
        );
        let rtrb = spsc_tp::<T, _, _>(
            n,
            rtrb::RingBuffer::new(CAP),
            |p: &mut rtrb::Producer<T>, v| p.push(v).map_err(|rtrb::PushError::Full(v)| v),
            |c: &mut rtrb::Consumer<T>| c.pop().ok(),
        );
        let q = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
        let cbq = spsc_tp::<T, _, _>(n, (q.clone(), q), |p, v| p.push(v), |c| c.pop());
        let rb = ringbuf::HeapRb::<T>::new(CAP);
        let ringbuf = spsc_tp::<T, _, _>(n, rb.split(), |p, v| p.try_push(v), |c| c.try_pop());
        let mut hq = Box::new(heapless::spsc::Queue::<T, CAP>::new());
        let heapless = spsc_tp::<T, _, _>(n, hq.split(), |p, v| p.enqueue(v), |c| c.dequeue());
        let disruptor = disruptor_spsc_tp::<T>(n);
        [ours, rtrb, cbq, ringbuf, heapless, disruptor]
    });
    Row {
        name: format!("spsc_{label}"),
        unit: "msgs/s",
        ours,
        peers: vec![
            ("rtrb", rtrb),
            ("crossbeam_arrayqueue", cbq),
            ("ringbuf", ringbuf),
            ("heapless", heapless),
            ("disruptor", disruptor),
        ],
    }
}

/// Batched SPSC: chunks of 64 written and read in place.
fn spsc_chunk_rows(n: u64) -> Row {
    const CAP: usize = 1024;
    const CHUNK: usize = 64;
    let run_ours = || {
        let (mut tx, mut rx) = spsc::channel::<u64>(CAP).unwrap();
        let start = Instant::now();
        let sum = thread::scope(|s| {
            s.spawn(move || {
                pin(0);
                let mut i = 0u64;
                while i < n {
                    if let Ok(chunk) = tx.write_chunk_uninit(CHUNK) {
                        i += chunk.fill_from_iter(i..n) as u64;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
            s.spawn(move || {
                pin(1);
                let (mut sum, mut got) = (0u64, 0u64);
                while got < n {
                    let k = rx.slots().min(CHUNK);
                    if k == 0 {
                        std::hint::spin_loop();
                        continue;
                    }
                    let chunk = rx.read_chunk(k).unwrap();
                    let (a, b) = chunk.as_slices();
                    sum = a.iter().chain(b).fold(sum, |s, v| s.wrapping_add(*v));
                    chunk.commit_all();
                    got += k as u64;
                }
                sum
            })
            .join()
            .unwrap()
        });
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(sum, sum_to(n));
        n as f64 / secs
    };
    let run_rtrb = || {
        let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
        let start = Instant::now();
        let sum = thread::scope(|s| {
            s.spawn(move || {
                pin(0);
                let mut i = 0u64;
                while i < n {
                    if let Ok(chunk) = tx.write_chunk_uninit(CHUNK) {
                        i += chunk.fill_from_iter(i..n) as u64;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
            s.spawn(move || {
                pin(1);
                let (mut sum, mut got) = (0u64, 0u64);
                while got < n {
                    let k = rx.slots().min(CHUNK);
                    if k == 0 {
                        std::hint::spin_loop();
                        continue;
                    }
                    let chunk = rx.read_chunk(k).unwrap();
                    let (a, b) = chunk.as_slices();
                    sum = a.iter().chain(b).fold(sum, |s, v| s.wrapping_add(*v));
                    chunk.commit_all();
                    got += k as u64;
                }
                sum
            })
            .join()
            .unwrap()
        });
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(sum, sum_to(n));
        n as f64 / secs
    };
    let [ours, rtrb] = med(|| [run_ours(), run_rtrb()]);
    Row {
        name: "spsc_chunk64_u64".into(),
        unit: "msgs/s",
        ours,
        peers: vec![("rtrb", rtrb)],
    }
}

/// Ping-pong over two rings (core 0 -> core 1 -> core 0); returns the p50
/// and p99 round trip in ns.
fn pingpong<P: Send, C: Send>(
    rounds: usize,
    (mut tx_a, mut rx_a): (P, C),
    (mut tx_b, mut rx_b): (P, C),
    push: impl Fn(&mut P, u64) -> Result<(), u64> + Sync,
    pop: impl Fn(&mut C) -> Option<u64> + Sync,
) -> [f64; 2] {
    let warmup = rounds / 10;
    let (push, pop) = (&push, &pop);
    let mut samples = thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            loop {
                let v = loop {
                    if let Some(v) = pop(&mut rx_a) {
                        break v;
                    }
                    std::hint::spin_loop();
                };
                while push(&mut tx_b, v).is_err() {}
                if v == u64::MAX {
                    return;
                }
            }
        });
        s.spawn(move || {
            pin(0);
            let mut samples = Vec::with_capacity(rounds);
            for i in 0..(warmup + rounds) as u64 {
                let t0 = Instant::now();
                while push(&mut tx_a, i).is_err() {}
                let v = loop {
                    if let Some(v) = pop(&mut rx_b) {
                        break v;
                    }
                    std::hint::spin_loop();
                };
                let dt = t0.elapsed().as_nanos() as f64;
                assert_eq!(v, i);
                if i as usize >= warmup {
                    samples.push(dt);
                }
            }
            while push(&mut tx_a, u64::MAX).is_err() {}
            while pop(&mut rx_b).is_none() {}
            samples
        })
        .join()
        .unwrap()
    });
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    [pct(0.50), pct(0.99)]
}

fn latency_rows(rounds: usize) -> [Row; 2] {
    use ringbuf::traits::{Consumer as _, Producer as _, Split as _};
    const CAP: usize = 1024;
    let r = med(|| {
        let ours = pingpong(
            rounds,
            spsc::channel(CAP).unwrap(),
            spsc::channel(CAP).unwrap(),
            |p, v| p.try_push(v).map_err(|e| e.into_inner()),
            |c| c.try_pop().ok(),
        );
        let rtrb = pingpong(
            rounds,
            rtrb::RingBuffer::new(CAP),
            rtrb::RingBuffer::new(CAP),
            |p: &mut rtrb::Producer<u64>, v| p.push(v).map_err(|rtrb::PushError::Full(v)| v),
            |c: &mut rtrb::Consumer<u64>| c.pop().ok(),
        );
        let qa = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
        let qb = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
        let cbq = pingpong(
            rounds,
            (qa.clone(), qa),
            (qb.clone(), qb),
            |p, v| p.push(v),
            |c| c.pop(),
        );
        let ringbuf = pingpong(
            rounds,
            ringbuf::HeapRb::<u64>::new(CAP).split(),
            ringbuf::HeapRb::<u64>::new(CAP).split(),
            |p, v| p.try_push(v),
            |c| c.try_pop(),
        );
        let mut ha = Box::new(heapless::spsc::Queue::<u64, CAP>::new());
        let mut hb = Box::new(heapless::spsc::Queue::<u64, CAP>::new());
        let heapless = pingpong(
            rounds,
            ha.split(),
            hb.split(),
            |p, v| p.enqueue(v),
            |c| c.dequeue(),
        );
        [
            ours[0],
            ours[1],
            rtrb[0],
            rtrb[1],
            cbq[0],
            cbq[1],
            ringbuf[0],
            ringbuf[1],
            heapless[0],
            heapless[1],
        ]
    });
    let row = |name: &str, k: usize| Row {
        name: name.into(),
        unit: "ns",
        ours: r[k],
        peers: vec![
            ("rtrb", r[k + 2]),
            ("crossbeam_arrayqueue", r[k + 4]),
            ("ringbuf", r[k + 6]),
            ("heapless", r[k + 8]),
        ],
    };
    [row("spsc_rtt_p50", 0), row("spsc_rtt_p99", 1)]
}

// ---------------------------------------------------------------- MPSC

/// Waits a little, then yields: three threads share two cores here.
#[inline(always)]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

/// Two producers (cores 0 and 1) each push `n` tagged messages; the consumer
/// (unpinned: there are only two cores) checks per-producer order.
fn mpsc_tp<P: Send, C: Send>(
    n: u64,
    producers: Vec<P>,
    mut rx: C,
    push: impl Fn(&mut P, u64) -> Result<(), u64> + Sync,
    pop: impl Fn(&mut C) -> Option<u64> + Sync,
) -> f64 {
    let start = Instant::now();
    thread::scope(|s| {
        for (core, mut tx) in producers.into_iter().enumerate() {
            let push = &push;
            s.spawn(move || {
                pin(core);
                for i in 0..n {
                    let mut v = (core as u64) << 40 | i;
                    let mut spins = 0;
                    while let Err(back) = push(&mut tx, v) {
                        v = back;
                        backoff(&mut spins);
                    }
                }
            });
        }
        let mut next = [0u64; 2];
        let mut spins = 0;
        while next[0] + next[1] < 2 * n {
            match pop(&mut rx) {
                Some(v) => {
                    let p = (v >> 40) as usize;
                    assert_eq!(v & ((1 << 40) - 1), next[p]);
                    next[p] += 1;
                    spins = 0;
                }
                None => backoff(&mut spins),
            }
        }
    });
    (2 * n) as f64 / start.elapsed().as_secs_f64()
}

fn disruptor_mpsc_tp(n: u64) -> f64 {
    use disruptor::Producer as _;
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let mut next = [0u64; 2];
    let p1 = disruptor::build_multi_producer(1024, || 0u64, disruptor::BusySpinWithSpinLoopHint)
        .handle_events_with(move |v: &u64, _, _| {
            let p = (*v >> 40) as usize;
            assert_eq!(*v & ((1 << 40) - 1), next[p]);
            next[p] += 1;
            if next[0] + next[1] == 2 * n {
                d2.store(true, Ordering::Release);
            }
        })
        .build();
    let p2 = p1.clone();
    let start = Instant::now();
    thread::scope(|s| {
        for (core, mut p) in [p1, p2].into_iter().enumerate() {
            s.spawn(move || {
                pin(core);
                for i in 0..n {
                    p.publish(|e| *e = (core as u64) << 40 | i);
                }
            });
        }
    });
    while !done.load(Ordering::Acquire) {
        thread::yield_now();
    }
    (2 * n) as f64 / start.elapsed().as_secs_f64()
}

fn mpsc_rows(n: u64) -> Vec<Row> {
    const CAP: usize = 1024;
    let [cas, fanin, cbq, cbc, disruptor] = med(|| {
        let (tx, rx) = mpsc::cas::channel::<u64>(CAP).unwrap();
        let cas = mpsc_tp(
            n,
            vec![tx.clone(), tx],
            rx,
            |p, v| p.try_push(v).map_err(|e| e.into_inner()),
            |c| c.try_pop().ok(),
        );
        let (txs, rx) = mpsc::fanin::channel::<u64>(2, CAP, mpsc::fanin::Policy::Fair).unwrap();
        let fanin = mpsc_tp(
            n,
            txs,
            rx,
            |p, v| p.try_push(v).map_err(|e| e.into_inner()),
            |c| c.try_pop().ok(),
        );
        let q = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
        let cbq = mpsc_tp(
            n,
            vec![q.clone(), q.clone()],
            q,
            |p, v| p.push(v),
            |c| c.pop(),
        );
        let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
        let cbc = mpsc_tp(
            n,
            vec![tx.clone(), tx],
            rx,
            |p, v| p.try_send(v).map_err(|e| e.into_inner()),
            |c| c.try_recv().ok(),
        );
        [cas, fanin, cbq, cbc, disruptor_mpsc_tp(n)]
    });
    let peers = vec![
        ("crossbeam_arrayqueue", cbq),
        ("crossbeam_channel", cbc),
        ("disruptor_mp", disruptor),
    ];
    vec![
        Row {
            name: "mpsc2_cas_u64".into(),
            unit: "msgs/s",
            ours: cas,
            peers: peers.clone(),
        },
        Row {
            name: "mpsc2_fanin_u64".into(),
            unit: "msgs/s",
            ours: fanin,
            peers,
        },
    ]
}

// ---------------------------------------------------------------- SPMC

/// Publisher on core 0; two subscribers each read all `n` messages in order.
fn broadcast_ours(n: u64) -> f64 {
    let mut publisher = spmc::broadcast::create::<u64>(1024, 2).unwrap();
    let subs = [
        publisher.subscribe().unwrap(),
        publisher.subscribe().unwrap(),
    ];
    let start = Instant::now();
    thread::scope(|s| {
        for (k, mut sub) in subs.into_iter().enumerate() {
            s.spawn(move || {
                pin(1 - k.min(1));
                let (mut expect, mut spins) = (0u64, 0);
                while expect < n {
                    let chunk = sub.read_available();
                    if chunk.is_empty() {
                        backoff(&mut spins);
                        continue;
                    }
                    spins = 0;
                    let (a, b) = chunk.as_slices();
                    for v in a.iter().chain(b) {
                        assert_eq!(*v, expect);
                        expect += 1;
                    }
                    chunk.release();
                }
            });
        }
        s.spawn(move || {
            pin(0);
            for i in 0..n {
                let mut spins = 0;
                while publisher.try_publish(i).is_err() {
                    backoff(&mut spins);
                }
            }
        });
    });
    n as f64 / start.elapsed().as_secs_f64()
}

fn broadcast_disruptor(n: u64) -> f64 {
    use disruptor::{ProcessorSettings as _, Producer as _};
    let done = Arc::new(AtomicU64::new(0));
    let handler = |done: Arc<AtomicU64>| {
        let mut expect = 0u64;
        move |v: &u64, _, _| {
            assert_eq!(*v, expect);
            expect += 1;
            if expect == n {
                done.fetch_add(1, Ordering::Release);
            }
        }
    };
    let mut producer =
        disruptor::build_single_producer(1024, || 0u64, disruptor::BusySpinWithSpinLoopHint)
            .pin_at_core(1)
            .handle_events_with(handler(done.clone()))
            .handle_events_with(handler(done.clone()))
            .build();
    let r = thread::scope(|s| {
        s.spawn(|| {
            pin(0);
            let start = Instant::now();
            for i in 0..n {
                producer.publish(|e| *e = i);
            }
            while done.load(Ordering::Acquire) < 2 {
                thread::yield_now();
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
        .join()
        .unwrap()
    });
    drop(producer);
    r
}

fn broadcast_bus(n: u64) -> f64 {
    let mut bus = bus::Bus::<u64>::new(1024);
    let readers = [bus.add_rx(), bus.add_rx()];
    let start = Instant::now();
    thread::scope(|s| {
        for (k, mut rx) in readers.into_iter().enumerate() {
            s.spawn(move || {
                pin(1 - k.min(1));
                for i in 0..n {
                    let mut spins = 0;
                    loop {
                        match rx.try_recv() {
                            Ok(v) => {
                                assert_eq!(v, i);
                                break;
                            }
                            Err(_) => backoff(&mut spins),
                        }
                    }
                }
            });
        }
        s.spawn(move || {
            pin(0);
            for i in 0..n {
                let mut spins = 0;
                while bus.try_broadcast(i).is_err() {
                    backoff(&mut spins);
                }
            }
        });
    });
    n as f64 / start.elapsed().as_secs_f64()
}

fn broadcast_rows(n: u64) -> Row {
    let [ours, disruptor, bus] =
        med(|| [broadcast_ours(n), broadcast_disruptor(n), broadcast_bus(n)]);
    Row {
        name: "spmc_broadcast2_u64".into(),
        unit: "msgs/s",
        ours,
        peers: vec![("disruptor", disruptor), ("bus", bus)],
    }
}

// ---------------------------------------------------------------- main

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would not.
    if !std::env::args().any(|a| a == "--bench") {
        println!("rings bench: run with `cargo bench -p percore-ring`");
        return;
    }
    let scale = |n: u64| match std::env::var("PERCORE_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        Some(f) => ((n as f64 * f) as u64).max(1000),
        None => n,
    };
    println!(
        "percore-ring benchmark: median of {} repetitions, cores 0 and 1",
        reps()
    );
    let mut rows = Vec::new();
    let mut run = |r: Row| {
        print_row(&r);
        rows.push(r);
    };
    run(spsc_rows::<u64>("u64", scale(10_000_000)));
    run(spsc_rows::<Msg64>("msg64", scale(10_000_000)));
    run(spsc_chunk_rows(scale(10_000_000)));
    for r in latency_rows(scale(100_000) as usize) {
        run(r);
    }
    for r in mpsc_rows(scale(500_000)) {
        run(r);
    }
    run(broadcast_rows(scale(500_000)));

    println!();
    println!("| row | percore | best peer | best peer value | percore/best | unit |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let (peer, v) = r.best_peer();
        println!(
            "| {} | {:.4e} | {} | {:.4e} | {:.2} | {} |",
            r.name,
            r.ours,
            peer,
            v,
            r.ours / v,
            r.unit
        );
    }
    println!();
    for r in &rows {
        let (peer, v) = r.best_peer();
        println!(
            "bench {} {:.1} {} {:.1} {}",
            r.name, r.ours, peer, v, r.unit
        );
    }
    black_box(&rows);
}
