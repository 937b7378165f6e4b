//! Readiness throughput and wake latency, with mio (epoll + eventfd) as the
//! peer where the same program can be written against both.
//!
//! Rows:
//! - `signal_poll_batch`: 1024 registrations signalled, then drained by
//!   `poll`; ns per event (percore only: mio has no user-space sources).
//! - `wake_poll_same_thread`: `Waker::wake` + `poll(Some(0))` on one thread;
//!   ns per wake, percore vs mio.
//! - `wake_roundtrip_threads`: ping-pong between two threads, each blocked in
//!   `poll(None)` and woken by the other's `Waker`; ns per round trip,
//!   percore (thread park hook) vs mio.
//!
//! Median of `REPS` runs after a warm-up. Run: `cargo bench -p percore-poll`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use percore_poll::{Events, Interest, Park, Poll, Ready, Registration, Token, Waker};

const REPS: usize = 7;

/// `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
/// this is a smoke run: 1/100 of the work and no `bench` lines.
fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// `full` iterations, or 1/100 of them in a smoke run.
fn scaled(full: u32) -> u32 {
    if smoke() { (full / 100).max(1) } else { full }
}

struct ThreadPark(thread::Thread);

impl Park for ThreadPark {
    fn park(&self, timeout: Option<Duration>) {
        match timeout {
            Some(t) => thread::park_timeout(t),
            None => thread::park(),
        }
    }
    fn unpark(&self) {
        self.0.unpark();
    }
}

use percore_benchkit::{Table, bench_line, load_average, median};

/// Runs `f` once to warm up, then `REPS` times; median of its results.
fn measure(mut f: impl FnMut() -> f64) -> f64 {
    f();
    median((0..REPS).map(|_| f()).collect())
}

fn signal_poll_batch() -> f64 {
    const N: usize = 1024;
    let rounds = scaled(200) as usize;
    let mut poll = Poll::with_capacity(N).unwrap();
    let regs: Vec<Registration> = (0..N)
        .map(|i| {
            let mut r = Registration::new();
            poll.registry()
                .register(&mut r, Token(i), Interest::READABLE)
                .unwrap();
            r
        })
        .collect();
    let signals: Vec<_> = regs.iter().map(|r| r.signal().unwrap().clone()).collect();
    let mut events = Events::with_capacity(N);
    measure(|| {
        let start = Instant::now();
        for _ in 0..rounds {
            for s in &signals {
                s.set(Ready::READABLE).unwrap();
            }
            poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
            assert_eq!(events.iter().len(), N);
        }
        start.elapsed().as_nanos() as f64 / (N * rounds) as f64
    })
}

const SAME_THREAD_OPS: u32 = 100_000;

fn ours_wake_poll() -> f64 {
    let mut poll = Poll::with_capacity(4).unwrap();
    let waker = Waker::new(poll.registry(), Token(0)).unwrap();
    let mut events = Events::with_capacity(4);
    measure(|| {
        let ops = scaled(SAME_THREAD_OPS);
        let start = Instant::now();
        for _ in 0..ops {
            waker.wake().unwrap();
            poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
            black_box(events.iter().len());
        }
        start.elapsed().as_nanos() as f64 / f64::from(ops)
    })
}

fn mio_wake_poll() -> f64 {
    let mut poll = mio::Poll::new().unwrap();
    let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
    let mut events = mio::Events::with_capacity(4);
    measure(|| {
        let ops = scaled(SAME_THREAD_OPS);
        let start = Instant::now();
        for _ in 0..ops {
            waker.wake().unwrap();
            poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
            black_box(events.iter().count());
        }
        start.elapsed().as_nanos() as f64 / f64::from(ops)
    })
}

const ROUND_TRIPS: u32 = 5_000;
// The peer answers until told to stop rather than counting rounds: mio may
// report spurious waker events, and a peer that counted one as a round would
// leave the main thread waiting forever on the last trip.

fn ours_roundtrip() -> f64 {
    let (to_main, from_peer) = mpsc::channel::<Waker>();
    let mut poll = Poll::with_park(4, ThreadPark(thread::current())).unwrap();
    let back = Waker::new(poll.registry(), Token(0)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let peer = thread::spawn(move || {
        let mut poll = Poll::with_park(4, ThreadPark(thread::current())).unwrap();
        to_main
            .send(Waker::new(poll.registry(), Token(1)).unwrap())
            .unwrap();
        let mut events = Events::with_capacity(4);
        loop {
            poll.poll(&mut events, None).unwrap();
            if stopped.load(Ordering::Acquire) {
                return;
            }
            back.wake().unwrap();
        }
    });
    let ping = from_peer.recv().unwrap();
    let mut events = Events::with_capacity(4);
    let ns = measure(|| {
        let trips = scaled(ROUND_TRIPS);
        let start = Instant::now();
        for _ in 0..trips {
            ping.wake().unwrap();
            poll.poll(&mut events, None).unwrap();
        }
        start.elapsed().as_nanos() as f64 / f64::from(trips)
    });
    stop.store(true, Ordering::Release);
    ping.wake().unwrap();
    peer.join().unwrap();
    ns
}

/// `poll(None)` until at least one event (mio may return early on EINTR).
fn mio_wait(poll: &mut mio::Poll, events: &mut mio::Events) {
    loop {
        poll.poll(events, None).unwrap();
        if !events.is_empty() {
            return;
        }
    }
}

fn mio_roundtrip() -> f64 {
    let (to_main, from_peer) = mpsc::channel::<mio::Waker>();
    let mut poll = mio::Poll::new().unwrap();
    let back = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let peer = thread::spawn(move || {
        let mut poll = mio::Poll::new().unwrap();
        to_main
            .send(mio::Waker::new(poll.registry(), mio::Token(1)).unwrap())
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        loop {
            mio_wait(&mut poll, &mut events);
            if stopped.load(Ordering::Acquire) {
                return;
            }
            back.wake().unwrap();
        }
    });
    let ping = from_peer.recv().unwrap();
    let mut events = mio::Events::with_capacity(4);
    let ns = measure(|| {
        let trips = scaled(ROUND_TRIPS);
        let start = Instant::now();
        for _ in 0..trips {
            ping.wake().unwrap();
            mio_wait(&mut poll, &mut events);
        }
        start.elapsed().as_nanos() as f64 / f64::from(trips)
    });
    stop.store(true, Ordering::Release);
    ping.wake().unwrap();
    peer.join().unwrap();
    ns
}

fn main() {
    let batch = signal_poll_batch();
    let (ours_same, mio_same) = (ours_wake_poll(), mio_wake_poll());
    let (ours_rt, mio_rt) = (ours_roundtrip(), mio_roundtrip());
    println!(
        "percore-poll readiness, median of {REPS} (ns, lower is better); load average {}",
        load_average()
    );
    let mut table = Table::new(&["row", "percore", "mio"]);
    table.row(vec![
        "signal_poll_batch /event".into(),
        format!("{batch:.1}"),
        "-".into(),
    ]);
    table.row(vec![
        "wake_poll_same_thread".into(),
        format!("{ours_same:.1}"),
        format!("{mio_same:.1}"),
    ]);
    table.row(vec![
        "wake_roundtrip_threads".into(),
        format!("{ours_rt:.1}"),
        format!("{mio_rt:.1}"),
    ]);
    table.print();
    if smoke() {
        println!("(smoke run: numbers are not measurements; use cargo bench)");
        return;
    }
    println!(
        "{}",
        bench_line("poll_signal_poll_batch", batch, None, "ns")
    );
    println!(
        "{}",
        bench_line(
            "poll_wake_poll_same_thread",
            ours_same,
            Some(("mio", mio_same)),
            "ns"
        )
    );
    println!(
        "{}",
        bench_line(
            "poll_wake_roundtrip_threads",
            ours_rt,
            Some(("mio", mio_rt)),
            "ns"
        )
    );
}
