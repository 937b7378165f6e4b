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
//! `PERCORE_BENCH_REPS` (default 7) repetitions is reported with its
//! min..max, the implementations interleaved in an order rotated by one per
//! repetition, and the load average is printed before and after.
//! Construction (with capacity where the peer offers it) is outside the
//! timed regions. `PERCORE_BENCH_ONLY=<name>` runs one implementation (for
//! profiling).
//!
//! One more row, `lifecycle`, measures the whole life of a timer as a
//! server sees it (see [`Life`]): timers are armed at a steady rate, most
//! are cancelled before they fire (the request they guard completed), the
//! rest expire, and time advances one tick at a time; ns per timer, from
//! insert to cancel or expiry, everything included.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use percore_benchkit::{Stat, load_average};
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

/// The `lifecycle` workload: [`LIFE_N`] timers, [`LIFE_PER_TICK`] armed per
/// tick, each with a timeout uniform in [1, [`LIFE_TIMEOUT`]] ticks; 90% are
/// cancelled at a uniform tick before their deadline, 10% expire. About
/// 40 000 timers are armed at any time.
struct Life {
    /// Timeout (ticks after arming) of timer `i`, armed at tick `i / LIFE_PER_TICK`.
    timeout: Vec<u64>,
    /// `cancels[t]`: the timers cancelled at tick `t`.
    cancels: Vec<Vec<u32>>,
    /// Whether timer `i` is cancelled (otherwise it expires).
    cancelled: Vec<bool>,
}

const LIFE_N: usize = 1_000_000;
const LIFE_PER_TICK: usize = 16;
const LIFE_TIMEOUT: u64 = 5_000;

impl Life {
    fn new() -> Self {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        };
        let ticks = Self::armed_at(LIFE_N) as usize + LIFE_TIMEOUT as usize + 2;
        let mut cancels = vec![Vec::new(); ticks];
        let mut cancelled = vec![false; LIFE_N];
        let timeout: Vec<u64> = (0..LIFE_N)
            .map(|i| {
                let timeout = 1 + rand() % LIFE_TIMEOUT;
                if rand() % 10 != 0 {
                    // Cancelled at a tick in [armed, deadline).
                    let at = Self::armed_at(i) + rand() % timeout;
                    cancels[at as usize].push(i as u32);
                    cancelled[i] = true;
                }
                timeout
            })
            .collect();
        Self {
            timeout,
            cancels,
            cancelled,
        }
    }

    /// The tick at which timer `i` is armed.
    fn armed_at(i: usize) -> u64 {
        (i / LIFE_PER_TICK) as u64
    }

    /// The ticks the workload runs for: every deadline has passed at the end.
    fn ticks(&self) -> u64 {
        self.cancels.len() as u64
    }

    fn expected_fired(&self) -> usize {
        self.cancelled.iter().filter(|c| !**c).count()
    }

    /// Runs the workload: per tick, arm that tick's timers, cancel that
    /// tick's cancellations, advance to the tick. Returns ns per timer.
    fn run<D: Timers>(&self, timers: &mut D) -> f64 {
        let mut handles: Vec<Option<D::Handle>> = (0..LIFE_N).map(|_| None).collect();
        let mut fired = 0;
        let start = Instant::now();
        let mut next = 0;
        for t in 0..self.ticks() {
            while next < LIFE_N && Self::armed_at(next) == t {
                let expires = !self.cancelled[next];
                handles[next] = Some(timers.arm(next, t + self.timeout[next], expires));
                next += 1;
            }
            for &i in &self.cancels[t as usize] {
                timers.cancel(handles[i as usize].take().unwrap());
            }
            fired += timers.advance(t);
        }
        let ns = per_op(start, LIFE_N);
        assert_eq!(fired, self.expected_fired());
        ns
    }
}

/// One implementation driven by the `lifecycle` workload (deadlines and
/// instants in ticks).
trait Timers {
    type Handle;
    /// Arms timer `i` for `deadline`; `expires` says the workload will not
    /// cancel it (for APIs whose handles must otherwise be consumed).
    fn arm(&mut self, i: usize, deadline: u64, expires: bool) -> Self::Handle;
    fn cancel(&mut self, handle: Self::Handle);
    /// Advances to `now` and returns how many timers fired.
    fn advance(&mut self, now: u64) -> usize;
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

impl Timers for Wheel<u64> {
    type Handle = percore_timer::TimerHandle;
    fn arm(&mut self, i: usize, deadline: u64, _: bool) -> Self::Handle {
        self.insert(deadline << SHIFT, i as u64).unwrap()
    }
    fn cancel(&mut self, handle: Self::Handle) {
        black_box(Wheel::cancel(self, handle).unwrap());
    }
    fn advance(&mut self, now: u64) -> usize {
        let mut sum = 0u64;
        let fired = Wheel::advance(self, now << SHIFT, |e| {
            if let Expired::Oneshot { payload, .. } = e {
                sum = sum.wrapping_add(payload);
            }
        });
        black_box(sum);
        fired
    }
}

fn percore_life(l: &Life) -> f64 {
    let config = Config::new(TickShift::new(SHIFT).unwrap()).with_capacity(LIFE_N / 8);
    l.run(&mut Wheel::new(config).unwrap())
}

/// The lazy `BinaryHeap` of [`binary_heap`], for the lifecycle workload.
struct LazyHeap {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    payloads: Vec<Option<u64>>,
}

impl Timers for LazyHeap {
    type Handle = u32;
    fn arm(&mut self, i: usize, deadline: u64, _: bool) -> u32 {
        let key = self.payloads.len() as u32;
        self.payloads.push(Some(i as u64));
        self.heap.push(Reverse((deadline, key)));
        key
    }
    fn cancel(&mut self, key: u32) {
        black_box(self.payloads[key as usize].take().unwrap());
    }
    fn advance(&mut self, now: u64) -> usize {
        let mut fired = 0;
        while let Some(&Reverse((d, key))) = self.heap.peek() {
            if d > now {
                break;
            }
            self.heap.pop();
            if let Some(p) = self.payloads[key as usize].take() {
                black_box(p);
                fired += 1;
            }
        }
        fired
    }
}

fn binary_heap_life(l: &Life) -> f64 {
    l.run(&mut LazyHeap {
        heap: BinaryHeap::with_capacity(LIFE_N / 8),
        payloads: Vec::with_capacity(LIFE_N),
    })
}

/// tokio-util `DelayQueue` on a paused runtime, as in [`delay_queue`].
struct Delay<'a> {
    runtime: &'a tokio::runtime::Runtime,
    queue: tokio_util::time::DelayQueue<u64>,
    base: tokio::time::Instant,
}

impl Timers for Delay<'_> {
    type Handle = tokio_util::time::delay_queue::Key;
    fn arm(&mut self, i: usize, deadline: u64, _: bool) -> Self::Handle {
        let at = self.base + Duration::from_millis(deadline);
        self.queue.insert_at(i as u64, at)
    }
    fn cancel(&mut self, key: Self::Handle) {
        black_box(self.queue.remove(&key));
    }
    fn advance(&mut self, now: u64) -> usize {
        let (queue, base) = (&mut self.queue, self.base);
        self.runtime.block_on(async {
            let target = base + Duration::from_millis(now);
            let at = tokio::time::Instant::now();
            if target > at {
                tokio::time::advance(target - at).await;
            }
            let now = tokio::time::Instant::now();
            let mut fired = 0;
            while let Some(key) = queue.peek() {
                if queue.deadline(&key) > now {
                    break;
                }
                let Some(e) = std::future::poll_fn(|cx| queue.poll_expired(cx)).await else {
                    break;
                };
                black_box(e.into_inner());
                fired += 1;
            }
            fired
        })
    }
}

fn delay_queue_life(l: &Life) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let (queue, base) = runtime.block_on(async {
        (
            tokio_util::time::DelayQueue::with_capacity(LIFE_N / 8),
            tokio::time::Instant::now(),
        )
    });
    let _guard = runtime.enter();
    l.run(&mut Delay {
        runtime: &runtime,
        queue,
        base,
    })
}

/// nexus-timer, as in [`nexus`]; timers that will expire are armed with
/// `schedule_forget` (their handle would otherwise have to be consumed).
struct Nexus {
    wheel: nexus_timer::Wheel<u64>,
    base: Instant,
    buf: Vec<u64>,
}

impl Timers for Nexus {
    type Handle = Option<nexus_timer::TimerHandle<u64>>;
    fn arm(&mut self, i: usize, deadline: u64, expires: bool) -> Self::Handle {
        let at = self.base + Duration::from_millis(deadline);
        if expires {
            self.wheel.schedule_forget(at, i as u64);
            None
        } else {
            Some(self.wheel.schedule(at, i as u64))
        }
    }
    fn cancel(&mut self, handle: Self::Handle) {
        black_box(self.wheel.cancel(handle.unwrap()));
    }
    fn advance(&mut self, now: u64) -> usize {
        self.buf.clear();
        let now = self.base + Duration::from_millis(now);
        self.wheel.poll_and_rebalance(now, &mut self.buf)
    }
}

fn nexus_life(l: &Life) -> f64 {
    let base = Instant::now();
    l.run(&mut Nexus {
        wheel: nexus_timer::Wheel::unbounded(LIFE_N / 8, base),
        base,
        buf: Vec::with_capacity(1024),
    })
}

/// hierarchical_hash_wheel_timer, as in [`hhwt`]: one `tick` per tick.
struct Hhwt {
    wheel: hierarchical_hash_wheel_timer::wheels::cancellable::QuadWheelWithOverflow<
        hierarchical_hash_wheel_timer::IdOnlyTimerEntry<u64>,
    >,
    now: u64,
}

impl Timers for Hhwt {
    type Handle = u64;
    fn arm(&mut self, i: usize, deadline: u64, _: bool) -> u64 {
        let delay = Duration::from_millis(deadline - self.now);
        self.wheel
            .insert(hierarchical_hash_wheel_timer::IdOnlyTimerEntry::new(
                i as u64, delay,
            ))
            .unwrap();
        i as u64
    }
    fn cancel(&mut self, id: u64) {
        self.wheel.cancel(&id).unwrap();
    }
    fn advance(&mut self, now: u64) -> usize {
        let mut fired = 0;
        while self.now < now {
            fired += self.wheel.tick().len();
            self.now += 1;
        }
        fired
    }
}

fn hhwt_life(l: &Life) -> f64 {
    use hierarchical_hash_wheel_timer::wheels::cancellable::QuadWheelWithOverflow;
    l.run(&mut Hhwt {
        wheel: QuadWheelWithOverflow::new(),
        now: 0,
    })
}

type Runner = fn(&Workload, Expiry) -> Phases;
type LifeRunner = fn(&Life) -> f64;

const IMPLS: [(&str, Runner, LifeRunner); 5] = [
    ("percore", percore, percore_life),
    ("binary_heap_lazy", binary_heap, binary_heap_life),
    ("tokio_delay_queue", delay_queue, delay_queue_life),
    ("nexus_timer", nexus, nexus_life),
    ("hhwt", hhwt, hhwt_life),
];

const ROWS: [&str; 5] = ["insert", "cancel", "expire", "expire_stepped", "lifecycle"];

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then
    // run a single repetition, just to prove the harness works.
    let bench = std::env::args().any(|a| a == "--bench");
    let reps = if bench { percore_benchkit::reps(7) } else { 1 };
    let only = std::env::var("PERCORE_BENCH_ONLY").ok();
    let before = load_average();
    let w = Workload::new();
    let life = Life::new();
    // samples[implementation][row] = one figure per repetition.
    let mut samples = vec![vec![Vec::new(); ROWS.len()]; IMPLS.len()];
    for rep in 0..reps {
        // Rotate the order each repetition so no implementation always runs
        // right after the same neighbour.
        for k in 0..IMPLS.len() {
            let j = (k + rep) % IMPLS.len();
            let (name, run, run_life) = IMPLS[j];
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            let jump = run(&w, Expiry::Jump);
            let stepped = run(&w, Expiry::Stepped);
            let lifecycle = run_life(&life);
            let figures = [
                jump.insert,
                jump.cancel,
                jump.expire,
                stepped.expire,
                lifecycle,
            ];
            for (row, figure) in figures.into_iter().enumerate() {
                samples[j][row].push(figure);
            }
        }
    }
    let stats: Vec<Vec<Stat>> = samples
        .into_iter()
        .map(|rows| rows.into_iter().map(Stat::of).collect())
        .collect();
    report(reps, &before, &stats);
}

/// Prints the human table and one machine-readable line per row.
fn report(reps: usize, before: &str, stats: &[Vec<Stat>]) {
    println!(
        "1M timers, deadlines uniform in [1, 1e6] ticks, cancel a random half, expire the rest \
         (one jump / one advance per tick); lifecycle: 1M timers armed 16 per tick, 90% \
         cancelled before they fire; ns/op, median [min..max] of {reps}, implementations \
         interleaved; (xN) = peer / percore"
    );
    println!("load average before: {before}");
    print!("{:<15}", "phase");
    for (name, _, _) in &IMPLS {
        print!(" {name:>30}");
    }
    println!();
    for (row, name) in ROWS.iter().enumerate() {
        print!("{name:<15}");
        let ours = stats[0][row].median;
        for s in stats.iter().map(|s| s[row]) {
            let cell = format!(
                "{:.1} [{:.1}..{:.1}] (x{:.2})",
                s.median,
                s.min,
                s.max,
                s.median / ours
            );
            print!(" {cell:>30}");
        }
        println!();
    }
    println!("load average after: {}", load_average());
    for (row, name) in ROWS.iter().enumerate() {
        let (best, value) = IMPLS[1..]
            .iter()
            .zip(&stats[1..])
            .map(|((peer, _, _), s)| (*peer, s[row].median))
            .filter(|(_, v)| !v.is_nan())
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(("none", f64::NAN));
        println!(
            "bench timer_1m_{name} {:.1} {best} {value:.1} ns",
            stats[0][row].median
        );
    }
}
