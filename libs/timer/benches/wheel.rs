//! 1M timers, random deadlines in [1, 1e6] ticks: insert all, cancel a
//! random half, expire the rest — ns/op side by side with peers, in one run.
//!
//! Every implementation gets the same deadlines (same seed), cancels the
//! same handles in the same (shuffled) order, and expires the rest in one of
//! two ways:
//!
//! * `expire`: one advance to past the last deadline (a long sleep);
//! * `expire_stepped`: one advance per tick, 1M of them (a busy reactor).
//!
//! A tick is 2^20 ns for percore and 1 ms for the peers that count real
//! time. Each phase is timed with `Instant`; the median of
//! `PERCORE_BENCH_REPS` (default 5) repetitions is reported. Construction
//! (with capacity where the peer offers it) is outside the timed regions.
//! `PERCORE_BENCH_ONLY=<name>` runs one implementation (for profiling).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use percore_timer::{Config, Expired, TickShift, Wheel};

const N: usize = 1_000_000;
const MAX_TICKS: u64 = 1_000_000;
const SHIFT: u32 = 20;

/// How the timers left after cancelling are expired.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// One advance past the last deadline.
    Jump,
    /// One advance per tick.
    Stepped,
}

impl Expiry {
    /// The instants (in ticks) to advance to.
    fn steps(self) -> impl Iterator<Item = u64> {
        let first = match self {
            Self::Jump => MAX_TICKS + 1,
            Self::Stepped => 1,
        };
        first..=MAX_TICKS + 1
    }
}

/// Nanoseconds per operation for one run of the three phases.
#[derive(Clone, Copy, Default)]
struct Phases {
    insert: f64,
    cancel: f64,
    expire: f64,
}

struct Workload {
    deadlines: Vec<u64>,
    /// Indices (into `deadlines`) to cancel, in cancel order.
    cancel: Vec<usize>,
}

impl Workload {
    fn new() -> Self {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let deadlines = (0..N).map(|_| 1 + rand() % MAX_TICKS).collect();
        let mut order: Vec<usize> = (0..N).collect();
        for i in (1..N).rev() {
            order.swap(i, (rand() % (i as u64 + 1)) as usize);
        }
        order.truncate(N / 2);
        Self {
            deadlines,
            cancel: order,
        }
    }

    fn expected_fired(&self) -> usize {
        N - self.cancel.len()
    }
}

fn per_op(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn percore(w: &Workload, expiry: Expiry) -> Phases {
    let config = Config::new(TickShift::new(SHIFT).unwrap()).with_capacity(N);
    let mut wheel = Wheel::new(config).unwrap();
    let start = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|i| wheel.insert(w.deadlines[i] << SHIFT, i as u64).unwrap())
        .collect();
    let insert = per_op(start, N);
    let start = Instant::now();
    for &i in &w.cancel {
        black_box(wheel.cancel(handles[i]).unwrap());
    }
    let cancel = per_op(start, w.cancel.len());
    let start = Instant::now();
    let (mut fired, mut sum) = (0, 0u64);
    for t in expiry.steps() {
        fired += wheel.advance(t << SHIFT, |e| {
            if let Expired::Oneshot { payload, .. } = e {
                sum = sum.wrapping_add(payload);
            }
        });
    }
    let expire = per_op(start, fired);
    black_box(sum);
    assert_eq!(fired, w.expected_fired());
    Phases {
        insert,
        cancel,
        expire,
    }
}

/// `BinaryHeap` with lazy cancellation: cancel empties the payload slot
/// named by the key `insert` returned, expiry pops and skips empty slots.
fn binary_heap(w: &Workload, expiry: Expiry) -> Phases {
    let mut heap = BinaryHeap::with_capacity(N);
    let mut payloads: Vec<Option<u64>> = Vec::with_capacity(N);
    let start = Instant::now();
    let keys: Vec<u32> = w
        .deadlines
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let key = payloads.len() as u32;
            payloads.push(Some(i as u64));
            heap.push(Reverse((d, key)));
            key
        })
        .collect();
    let insert = per_op(start, N);
    let start = Instant::now();
    for &i in &w.cancel {
        black_box(payloads[keys[i] as usize].take().unwrap());
    }
    let cancel = per_op(start, w.cancel.len());
    let start = Instant::now();
    let (mut fired, mut sum) = (0, 0u64);
    for t in expiry.steps() {
        while let Some(&Reverse((d, key))) = heap.peek() {
            if d > t {
                break;
            }
            heap.pop();
            if let Some(p) = payloads[key as usize].take() {
                fired += 1;
                sum = sum.wrapping_add(p);
            }
        }
    }
    let expire = per_op(start, fired);
    black_box(sum);
    assert_eq!(fired, w.expected_fired());
    Phases {
        insert,
        cancel,
        expire,
    }
}

/// tokio-util `DelayQueue` on a paused current-thread runtime: the clock is
/// moved with `tokio::time::advance` to each step, then `poll_expired` is
/// awaited while `peek` shows a due timer.
fn delay_queue(w: &Workload, expiry: Expiry) -> Phases {
    use tokio_util::time::DelayQueue;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut queue = DelayQueue::with_capacity(N);
        let base = tokio::time::Instant::now();
        let start = Instant::now();
        let keys: Vec<_> = (0..N)
            .map(|i| queue.insert_at(i as u64, base + Duration::from_millis(w.deadlines[i])))
            .collect();
        let insert = per_op(start, N);
        let start = Instant::now();
        for &i in &w.cancel {
            black_box(queue.remove(&keys[i]));
        }
        let cancel = per_op(start, w.cancel.len());
        let start = Instant::now();
        let (mut fired, mut sum) = (0, 0u64);
        for t in expiry.steps() {
            tokio::time::advance((base + Duration::from_millis(t)) - tokio::time::Instant::now())
                .await;
            // Await `poll_expired` (so the runtime can fire the queue's
            // internal sleep) while the queue's next timer is due.
            let now = tokio::time::Instant::now();
            while let Some(key) = queue.peek() {
                if queue.deadline(&key) > now {
                    break;
                }
                let Some(e) = std::future::poll_fn(|cx| queue.poll_expired(cx)).await else {
                    break;
                };
                fired += 1;
                sum = sum.wrapping_add(e.into_inner());
            }
        }
        let expire = per_op(start, fired);
        black_box(sum);
        assert_eq!(fired, w.expected_fired());
        Phases {
            insert,
            cancel,
            expire,
        }
    })
}

/// nexus-timer `Wheel` (1 ms tick, its defaults). Its handles must be
/// consumed, so the handles of timers left to expire are `free`d before
/// the expire phase, outside the timed region. A jump is one `poll`;
/// stepping uses `poll_and_rebalance`, which its docs recommend for steady
/// polling (plain `poll` rescans coarse slots on every call).
fn nexus(w: &Workload, expiry: Expiry) -> Phases {
    let base = Instant::now();
    let mut wheel: nexus_timer::Wheel<u64> = nexus_timer::Wheel::unbounded(N, base);
    let start = Instant::now();
    let mut handles: Vec<_> = (0..N)
        .map(|i| Some(wheel.schedule(base + Duration::from_millis(w.deadlines[i]), i as u64)))
        .collect();
    let insert = per_op(start, N);
    let start = Instant::now();
    for &i in &w.cancel {
        black_box(wheel.cancel(handles[i].take().unwrap()));
    }
    let cancel = per_op(start, w.cancel.len());
    for h in handles.into_iter().flatten() {
        wheel.free(h);
    }
    let mut buf = Vec::with_capacity(N);
    let start = Instant::now();
    let mut fired = 0;
    for t in expiry.steps() {
        let now = base + Duration::from_millis(t);
        fired += match expiry {
            Expiry::Jump => wheel.poll(now, &mut buf),
            Expiry::Stepped => wheel.poll_and_rebalance(now, &mut buf),
        };
    }
    let expire = per_op(start, fired);
    black_box(&buf);
    assert_eq!(fired, w.expected_fired());
    Phases {
        insert,
        cancel,
        expire,
    }
}

/// hierarchical_hash_wheel_timer's cancellable `QuadWheelWithOverflow`
/// (1 ms ticks). A jump skips empty stretches with `can_skip`/`skip` and
/// `tick`s where something is due; stepping `tick`s once per step.
fn hhwt(w: &Workload, expiry: Expiry) -> Phases {
    use hierarchical_hash_wheel_timer::IdOnlyTimerEntry;
    use hierarchical_hash_wheel_timer::wheels::Skip;
    use hierarchical_hash_wheel_timer::wheels::cancellable::QuadWheelWithOverflow;
    let mut wheel = QuadWheelWithOverflow::new();
    let start = Instant::now();
    for (i, &d) in w.deadlines.iter().enumerate() {
        wheel
            .insert(IdOnlyTimerEntry::new(i as u64, Duration::from_millis(d)))
            .unwrap();
    }
    let insert = per_op(start, N);
    let start = Instant::now();
    for &i in &w.cancel {
        wheel.cancel(&(i as u64)).unwrap();
    }
    let cancel = per_op(start, w.cancel.len());
    let start = Instant::now();
    let (mut fired, mut sum) = (0, 0u64);
    let mut fire = |expired: Vec<std::rc::Rc<IdOnlyTimerEntry<u64>>>| {
        for e in expired {
            fired += 1;
            sum = sum.wrapping_add(e.id);
        }
    };
    match expiry {
        Expiry::Jump => loop {
            match wheel.can_skip() {
                Skip::Empty => break,
                Skip::Millis(ms) => wheel.skip(ms),
                Skip::None => fire(wheel.tick()),
            }
        },
        Expiry::Stepped => {
            for _ in expiry.steps() {
                fire(wheel.tick());
            }
        }
    }
    let expire = per_op(start, fired);
    black_box(sum);
    assert_eq!(fired, w.expected_fired());
    Phases {
        insert,
        cancel,
        expire,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

type Runner = fn(&Workload, Expiry) -> Phases;

const IMPLS: [(&str, Runner); 5] = [
    ("percore", percore),
    ("binary_heap_lazy", binary_heap),
    ("tokio_delay_queue", delay_queue),
    ("nexus_timer", nexus),
    ("hhwt", hhwt),
];

const ROWS: [&str; 4] = ["insert", "cancel", "expire", "expire_stepped"];

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then
    // run a single repetition, just to prove the harness works.
    let bench = std::env::args().any(|a| a == "--bench");
    let reps: usize = std::env::var("PERCORE_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if bench { 5 } else { 1 });
    let only = std::env::var("PERCORE_BENCH_ONLY").ok();
    let w = Workload::new();
    // samples[implementation][row] = one figure per repetition.
    let mut samples = vec![vec![Vec::new(); ROWS.len()]; IMPLS.len()];
    for rep in 0..reps {
        // Rotate the order each repetition so no implementation always runs
        // right after the same neighbour.
        for k in 0..IMPLS.len() {
            let j = (k + rep) % IMPLS.len();
            let (name, run) = IMPLS[j];
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            let jump = run(&w, Expiry::Jump);
            let stepped = run(&w, Expiry::Stepped);
            let figures = [jump.insert, jump.cancel, jump.expire, stepped.expire];
            for (row, figure) in figures.into_iter().enumerate() {
                samples[j][row].push(figure);
            }
        }
    }
    let medians: Vec<Vec<f64>> = samples
        .into_iter()
        .map(|rows| {
            rows.into_iter()
                .map(|s| if s.is_empty() { f64::NAN } else { median(s) })
                .collect()
        })
        .collect();

    report(reps, &medians);
}

/// Prints the human table and one machine-readable line per row.
fn report(reps: usize, medians: &[Vec<f64>]) {
    println!(
        "1M timers, deadlines uniform in [1, 1e6] ticks, cancel a random half, expire the rest \
         (one jump / one advance per tick); ns/op, median of {reps}; (xN) = peer / percore"
    );
    print!("{:<15}", "phase");
    for (name, _) in &IMPLS {
        print!(" {name:>20}");
    }
    println!();
    for (row, name) in ROWS.iter().enumerate() {
        print!("{name:<15}");
        let ours = medians[0][row];
        for m in medians {
            let cell = format!("{:.1} (x{:.2})", m[row], m[row] / ours);
            print!(" {cell:>20}");
        }
        println!();
    }
    for (row, name) in ROWS.iter().enumerate() {
        let (best, value) = IMPLS[1..]
            .iter()
            .zip(&medians[1..])
            .map(|((peer, _), m)| (*peer, m[row]))
            .filter(|(_, v)| !v.is_nan())
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(("none", f64::NAN));
        println!(
            "bench timer_1m_{name} {:.1} {best} {value:.1} ns",
            medians[0][row]
        );
    }
}
