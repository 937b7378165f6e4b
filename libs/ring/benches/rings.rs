//! `cargo bench -p percore-ring`: percore's rings against the peer crates,
//! side by side in one run. Own harness (no criterion): every repetition runs
//! every implementation once, in an order rotated by one per repetition
//! (ABAB..., so a change in machine load hits all of them alike); every
//! figure is the median of `PERCORE_BENCH_REPS` (default 7) repetitions,
//! shown with its min..max. Threads are pinned to cores 0 and 1 with
//! `sched_setaffinity` and meet at a start line before the clock starts, so
//! thread creation and migration are not timed. The load average is printed
//! before and after, so a noisy run shows itself.
//!
//! Output: a detailed table per row, a summary table with percore's lead
//! over the best peer (its figure over theirs for msgs/s, theirs over its
//! for ns: above 1 percore is ahead), and one machine-readable line per row:
//! `bench <row> <percore> <best_peer_name> <best_peer> <unit>`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use percore_benchkit::{Stat, load_average, pin, reps};
use percore_ring::{mpsc, spmc, spsc};

// ---------------------------------------------------------------- harness

/// Waits until `parties` threads have arrived, so timing starts only once
/// every thread of a run is created, pinned and spinning.
fn start_line(ready: &AtomicUsize, parties: usize) {
    ready.fetch_add(1, Ordering::AcqRel);
    while ready.load(Ordering::Acquire) < parties {
        std::hint::spin_loop();
    }
}

/// Messages per window of [`Windows`]: 2^12.
const WINDOW_BITS: u32 = 12;

/// Throughput as the consumer sees it: a timestamp every 2^12 messages.
///
/// Two figures come out of a run: the wall-clock rate (all messages over
/// the whole run) and the median rate over the windows. On a machine shared
/// with other work the two pinned threads are preempted for milliseconds at
/// a time, and the wall-clock rate then measures the scheduler (whoever runs
/// alone just spins on an empty or full ring). A window lasts microseconds,
/// and a preemption spoils only the window it falls in, so the median over
/// the thousands of windows of a run is the rate of the ring itself while
/// both threads run. Every implementation is measured the same way.
struct Windows {
    start: Instant,
    stamps: Vec<Instant>,
}

impl Windows {
    fn start(n: u64) -> Self {
        Windows {
            start: Instant::now(),
            stamps: Vec::with_capacity((n >> WINDOW_BITS) as usize + 1),
        }
    }

    /// Notes that the consumer went from `before` to `after` messages.
    #[inline(always)]
    fn count(&mut self, before: u64, after: u64) {
        if (before ^ after) >> WINDOW_BITS != 0 {
            self.stamps.push(Instant::now());
        }
    }

    /// `[median window rate, wall-clock rate]` for `n` messages, in msgs/s.
    fn rates(self, n: u64) -> [f64; 2] {
        let wall = n as f64 / self.start.elapsed().as_secs_f64();
        let mut last = self.start;
        let windows: Vec<f64> = self
            .stamps
            .iter()
            .map(|&t| {
                let rate = (1u64 << WINDOW_BITS) as f64 / (t - last).as_secs_f64();
                last = t;
                rate
            })
            .collect();
        if windows.len() < 3 {
            return [wall, wall];
        }
        [Stat::of(windows).median, wall]
    }
}

/// One implementation under test: runs once, returns `K` figures.
type Run<'a, const K: usize> = Box<dyn FnMut() -> [f64; K] + 'a>;

/// Runs every implementation once per repetition, starting each repetition
/// one implementation later (A B C, B C A, C A B, ...), and returns, per
/// implementation, the median and range of each of its `K` figures.
fn interleave<const K: usize>(mut impls: Vec<Run<'_, K>>) -> Vec<[Stat; K]> {
    let n = impls.len();
    let mut samples = vec![vec![Vec::new(); K]; n];
    for rep in 0..reps(7) {
        for k in 0..n {
            let j = (k + rep) % n;
            for (figure, v) in impls[j]().into_iter().enumerate() {
                samples[j][figure].push(v);
            }
        }
    }
    samples
        .into_iter()
        .map(|figures| {
            let mut figures = figures.into_iter().map(Stat::of);
            std::array::from_fn(|_| figures.next().unwrap())
        })
        .collect()
}

struct Row {
    name: String,
    unit: &'static str,
    ours: Stat,
    peers: Vec<(&'static str, Stat)>,
}

impl Row {
    fn higher_is_better(&self) -> bool {
        self.unit.ends_with("/s")
    }
    fn best_peer(&self) -> (&'static str, f64) {
        let hib = self.higher_is_better();
        self.peers
            .iter()
            .map(|&(n, s)| (n, s.median))
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
    let stat = |s: Stat| format!("{} [{}..{}]", fmt(s.median), fmt(s.min), fmt(s.max));
    println!("  {} [{}], median [min..max]:", row.name, row.unit);
    println!("    {:<22} {}", "percore", stat(row.ours));
    for (n, s) in &row.peers {
        println!("    {n:<22} {}", stat(*s));
    }
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
/// returns the consumer's `[median window rate, wall-clock rate]` in
/// messages per second, timed from the start line (see [`Windows`]).
fn spsc_tp<T: Msg, P: Send, C: Send>(
    n: u64,
    (mut tx, mut rx): (P, C),
    push: impl Fn(&mut P, T) -> Result<(), T> + Sync,
    pop: impl Fn(&mut C) -> Option<T> + Sync,
) -> [f64; 2] {
    let (push, pop) = (&push, &pop);
    let ready = &AtomicUsize::new(0);
    let (sum, rates) = thread::scope(|s| {
        s.spawn(move || {
            pin(0);
            start_line(ready, 2);
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
            start_line(ready, 2);
            let mut windows = Windows::start(n);
            let mut sum = 0u64;
            let mut got = 0;
            while got < n {
                match pop(&mut rx) {
                    Some(v) => {
                        sum = sum.wrapping_add(v.val());
                        windows.count(got, got + 1);
                        got += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
            (sum, windows.rates(n))
        })
        .join()
        .unwrap()
    });
    assert_eq!(sum, sum_to(n));
    rates
}

fn disruptor_spsc_tp<T: Msg>(n: u64) -> [f64; 2] {
    use disruptor::{ProcessorSettings as _, Producer as _};
    let done = Arc::new(std::sync::Mutex::new(None));
    let d2 = done.clone();
    let mut sum = 0u64;
    let mut windows = None;
    let mut producer =
        disruptor::build_single_producer(1024, T::default, disruptor::BusySpinWithSpinLoopHint)
            .pin_at_core(1)
            .handle_events_with(move |e: &T, seq, _| {
                let seq = seq as u64;
                let w = windows.get_or_insert_with(|| Windows::start(n));
                sum = sum.wrapping_add(e.val());
                w.count(seq, seq + 1);
                if seq == n - 1 {
                    let rates = windows.take().unwrap().rates(n);
                    *d2.lock().unwrap() = Some((sum, rates));
                }
            })
            .build();
    thread::scope(|s| {
        s.spawn(|| {
            pin(0);
            for i in 0..n {
                producer.publish(|e| *e = T::new(i));
            }
        });
    });
    let (sum, rates) = loop {
        if let Some(r) = done.lock().unwrap().take() {
            break r;
        }
        std::hint::spin_loop();
    };
    assert_eq!(sum, sum_to(n));
    drop(producer);
    rates
}

fn spsc_rows<T: Msg>(label: &str, n: u64) -> [Row; 2] {
    use ringbuf::traits::{Consumer as _, Producer as _, Split as _};
    const CAP: usize = 1024;
    let r = interleave::<2>(vec![
        Box::new(|| {
            spsc_tp::<T, _, _>(
                n,
                spsc::channel(CAP).unwrap(),
                |p, v| p.try_push(v).map_err(|e| e.into_inner()),
                |c| c.try_pop().ok(),
            )
        }),
        Box::new(|| {
            spsc_tp::<T, _, _>(
                n,
                rtrb::RingBuffer::new(CAP),
                |p: &mut rtrb::Producer<T>, v| p.push(v).map_err(|rtrb::PushError::Full(v)| v),
                |c: &mut rtrb::Consumer<T>| c.pop().ok(),
            )
        }),
        Box::new(|| {
            let q = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
            spsc_tp::<T, _, _>(n, (q.clone(), q), |p, v| p.push(v), |c| c.pop())
        }),
        Box::new(|| {
            let rb = ringbuf::HeapRb::<T>::new(CAP);
            spsc_tp::<T, _, _>(n, rb.split(), |p, v| p.try_push(v), |c| c.try_pop())
        }),
        Box::new(|| {
            let mut hq = Box::new(heapless::spsc::Queue::<T, CAP>::new());
            spsc_tp::<T, _, _>(n, hq.split(), |p, v| p.enqueue(v), |c| c.dequeue())
        }),
        Box::new(|| disruptor_spsc_tp::<T>(n)),
    ]);
    let row = |name: String, k: usize| Row {
        name,
        unit: "msgs/s",
        ours: r[0][k],
        peers: vec![
            ("rtrb", r[1][k]),
            ("crossbeam_arrayqueue", r[2][k]),
            ("ringbuf", r[3][k]),
            ("heapless", r[4][k]),
            ("disruptor", r[5][k]),
        ],
    };
    [
        row(format!("spsc_{label}"), 0),
        row(format!("spsc_{label}_wall"), 1),
    ]
}

/// Batched SPSC: chunks of 64 written and read in place.
fn spsc_chunk_rows(n: u64) -> [Row; 2] {
    const CAP: usize = 1024;
    const CHUNK: usize = 64;
    let run_ours = || {
        let (mut tx, mut rx) = spsc::channel::<u64>(CAP).unwrap();
        let ready = &AtomicUsize::new(0);
        let (sum, rates) = thread::scope(|s| {
            s.spawn(move || {
                pin(0);
                start_line(ready, 2);
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
                start_line(ready, 2);
                let mut windows = Windows::start(n);
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
                    windows.count(got, got + k as u64);
                    got += k as u64;
                }
                (sum, windows.rates(n))
            })
            .join()
            .unwrap()
        });
        assert_eq!(sum, sum_to(n));
        rates
    };
    let run_rtrb = || {
        let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
        let ready = &AtomicUsize::new(0);
        let (sum, rates) = thread::scope(|s| {
            s.spawn(move || {
                pin(0);
                start_line(ready, 2);
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
                start_line(ready, 2);
                let mut windows = Windows::start(n);
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
                    windows.count(got, got + k as u64);
                    got += k as u64;
                }
                (sum, windows.rates(n))
            })
            .join()
            .unwrap()
        });
        assert_eq!(sum, sum_to(n));
        rates
    };
    let r = interleave::<2>(vec![Box::new(run_ours), Box::new(run_rtrb)]);
    let row = |name: &str, k: usize| Row {
        name: name.into(),
        unit: "msgs/s",
        ours: r[0][k],
        peers: vec![("rtrb", r[1][k])],
    };
    [row("spsc_chunk64_u64", 0), row("spsc_chunk64_u64_wall", 1)]
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
    let ready = &AtomicUsize::new(0);
    let mut samples = thread::scope(|s| {
        s.spawn(move || {
            pin(1);
            start_line(ready, 2);
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
            start_line(ready, 2);
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
    let r = interleave::<2>(vec![
        Box::new(|| {
            pingpong(
                rounds,
                spsc::channel(CAP).unwrap(),
                spsc::channel(CAP).unwrap(),
                |p, v| p.try_push(v).map_err(|e| e.into_inner()),
                |c| c.try_pop().ok(),
            )
        }),
        Box::new(|| {
            pingpong(
                rounds,
                rtrb::RingBuffer::new(CAP),
                rtrb::RingBuffer::new(CAP),
                |p: &mut rtrb::Producer<u64>, v| p.push(v).map_err(|rtrb::PushError::Full(v)| v),
                |c: &mut rtrb::Consumer<u64>| c.pop().ok(),
            )
        }),
        Box::new(|| {
            let qa = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
            let qb = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
            pingpong(
                rounds,
                (qa.clone(), qa),
                (qb.clone(), qb),
                |p, v| p.push(v),
                |c| c.pop(),
            )
        }),
        Box::new(|| {
            pingpong(
                rounds,
                ringbuf::HeapRb::<u64>::new(CAP).split(),
                ringbuf::HeapRb::<u64>::new(CAP).split(),
                |p, v| p.try_push(v),
                |c| c.try_pop(),
            )
        }),
        Box::new(|| {
            let mut ha = Box::new(heapless::spsc::Queue::<u64, CAP>::new());
            let mut hb = Box::new(heapless::spsc::Queue::<u64, CAP>::new());
            pingpong(
                rounds,
                ha.split(),
                hb.split(),
                |p, v| p.enqueue(v),
                |c| c.dequeue(),
            )
        }),
    ]);
    let row = |name: &str, k: usize| Row {
        name: name.into(),
        unit: "ns",
        ours: r[0][k],
        peers: vec![
            ("rtrb", r[1][k]),
            ("crossbeam_arrayqueue", r[2][k]),
            ("ringbuf", r[3][k]),
            ("heapless", r[4][k]),
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
    let r = interleave::<1>(vec![
        Box::new(|| {
            let (tx, rx) = mpsc::cas::channel::<u64>(CAP).unwrap();
            [mpsc_tp(
                n,
                vec![tx.clone(), tx],
                rx,
                |p, v| p.try_push(v).map_err(|e| e.into_inner()),
                |c| c.try_pop().ok(),
            )]
        }),
        Box::new(|| {
            let (txs, rx) = mpsc::fanin::channel::<u64>(2, CAP, mpsc::fanin::Policy::Fair).unwrap();
            [mpsc_tp(
                n,
                txs,
                rx,
                |p, v| p.try_push(v).map_err(|e| e.into_inner()),
                |c| c.try_pop().ok(),
            )]
        }),
        Box::new(|| {
            let q = Arc::new(crossbeam_queue::ArrayQueue::new(CAP));
            [mpsc_tp(
                n,
                vec![q.clone(), q.clone()],
                q,
                |p, v| p.push(v),
                |c| c.pop(),
            )]
        }),
        Box::new(|| {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
            [mpsc_tp(
                n,
                vec![tx.clone(), tx],
                rx,
                |p, v| p.try_send(v).map_err(|e| e.into_inner()),
                |c| c.try_recv().ok(),
            )]
        }),
        Box::new(|| [disruptor_mpsc_tp(n)]),
    ]);
    let (cas, fanin, cbq, cbc, disruptor) = (r[0][0], r[1][0], r[2][0], r[3][0], r[4][0]);
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
    let r = interleave::<1>(vec![
        Box::new(|| [broadcast_ours(n)]),
        Box::new(|| [broadcast_disruptor(n)]),
        Box::new(|| [broadcast_bus(n)]),
    ]);
    Row {
        name: "spmc_broadcast2_u64".into(),
        unit: "msgs/s",
        ours: r[0][0],
        peers: vec![("disruptor", r[1][0]), ("bus", r[2][0])],
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
    // `PERCORE_BENCH_ROWS=spsc_u64,spsc_rtt` runs only the rows whose name
    // starts with one of the given prefixes (all rows by default).
    let only = std::env::var("PERCORE_BENCH_ROWS").ok();
    let wanted = |row: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| row.starts_with(p)))
    };
    println!(
        "percore-ring benchmark: median [min..max] of {} repetitions, implementations \
         interleaved, cores 0 and 1; load average before: {}",
        reps(7),
        load_average()
    );
    let mut rows = Vec::new();
    let mut run = |r: Row| {
        print_row(&r);
        rows.push(r);
    };
    if wanted("spsc_u64") {
        spsc_rows::<u64>("u64", scale(10_000_000))
            .into_iter()
            .for_each(&mut run);
    }
    if wanted("spsc_msg64") {
        spsc_rows::<Msg64>("msg64", scale(10_000_000))
            .into_iter()
            .for_each(&mut run);
    }
    if wanted("spsc_chunk64_u64") {
        spsc_chunk_rows(scale(10_000_000))
            .into_iter()
            .for_each(&mut run);
    }
    if wanted("spsc_rtt") {
        latency_rows(scale(100_000) as usize)
            .into_iter()
            .for_each(&mut run);
    }
    if wanted("mpsc2") {
        mpsc_rows(scale(500_000)).into_iter().for_each(&mut run);
    }
    if wanted("spmc_broadcast2_u64") {
        run(broadcast_rows(scale(500_000)));
    }
    let after = load_average();

    println!();
    println!(
        "| row | percore median [min..max] | best peer | best peer median | percore lead (>1: ahead) | unit |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let (peer, v) = r.best_peer();
        let fmt = |v: f64| {
            if r.higher_is_better() {
                format!("{:.1}M", v / 1e6)
            } else {
                format!("{v:.0}")
            }
        };
        let ratio = if r.higher_is_better() {
            r.ours.median / v
        } else {
            v / r.ours.median
        };
        println!(
            "| {} | {} [{}..{}] | {} | {} | {:.2} | {} |",
            r.name,
            fmt(r.ours.median),
            fmt(r.ours.min),
            fmt(r.ours.max),
            peer,
            fmt(v),
            ratio,
            r.unit
        );
    }
    println!();
    println!("load average after: {after}");
    for r in &rows {
        let (peer, v) = r.best_peer();
        println!(
            "bench {} {:.1} {} {:.1} {}",
            r.name, r.ours.median, peer, v, r.unit
        );
    }
    black_box(&rows);
}
