//! select + requeue cost per flavour, with 10, 1k and 100k ready tasks.
//!
//! One operation is what the reactor does per scheduled task: `select()`,
//! the flavour's accounting (EDF: next deadline; fair: `charge`), and
//! `yield_now()` back into the ready structure. Every configuration runs
//! `REPS` timed repetitions after a warm-up; the median is reported.
//!
//! Run: `cargo bench -p percore-sched`

use std::hint::black_box;
use std::time::Instant;

use percore_sched::{AnyDiscipline, Flavour, Priority, TaskParams, TaskTree};

const REPS: usize = 7;
const OPS: u64 = 1_000_000;

/// `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
/// this is a smoke run: 1/1000 of the work and no `bench` lines.
fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn ops() -> u64 {
    if smoke() { OPS / 1000 } else { OPS }
}
const SIZES: [usize; 3] = [10, 1_000, 100_000];

/// Small xorshift generator: deterministic inputs, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn build(flavour: Flavour, n: usize, rng: &mut Rng) -> TaskTree<AnyDiscipline> {
    let mut tree = TaskTree::with_capacity(AnyDiscipline::new(flavour), n);
    for _ in 0..n {
        // Spread over 8 levels (RR walks the bitmap; fair mixes weights).
        let level = 28 + (rng.next() % 8) as u8;
        let params =
            TaskParams::new(Priority::new(level).unwrap()).with_deadline(rng.next() % 1_000_000);
        tree.spawn(params).unwrap();
    }
    tree
}

/// Runs `ops()` select + account + requeue rounds; returns ns per round.
fn run(flavour: Flavour, tree: &mut TaskTree<AnyDiscipline>, rng: &mut Rng) -> f64 {
    let ops = ops();
    let start = Instant::now();
    for _ in 0..ops {
        let id = tree.select().unwrap();
        let r = rng.next();
        match flavour {
            Flavour::RoundRobin => {}
            Flavour::Deadline => {
                let next = tree.task(id).unwrap().deadline() + 1 + r % 100_000;
                tree.set_deadline(id, next).unwrap();
            }
            Flavour::Fair => tree.charge(id, 50_000 + r % 100_000).unwrap(),
        }
        tree.yield_now(black_box(id)).unwrap();
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}

use percore_benchkit::{Table, bench_line, load_average, median};

fn main() {
    let flavours = [
        (Flavour::RoundRobin, "rr"),
        (Flavour::Deadline, "edf"),
        (Flavour::Fair, "fair"),
    ];
    let mut lines = Vec::new();
    println!(
        "select + requeue, ns/op (median of {REPS}); load average {}",
        load_average()
    );
    let mut table = Table::new(&["flavour", "10", "1k", "100k"]);
    for (flavour, short) in flavours {
        let mut row = vec![short.to_string()];
        for n in SIZES {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n as u64);
            let mut tree = build(flavour, n, &mut rng);
            run(flavour, &mut tree, &mut rng); // warm-up
            let times: Vec<f64> = (0..REPS)
                .map(|_| run(flavour, &mut tree, &mut rng))
                .collect();
            let m = median(times);
            row.push(format!("{m:.1}"));
            lines.push(bench_line(
                &format!("sched_select_requeue_{short}_{n}"),
                m,
                None,
                "ns",
            ));
        }
        table.row(row);
    }
    table.print();
    if smoke() {
        println!("(smoke run: numbers are not measurements; use cargo bench)");
        return;
    }
    for line in lines {
        println!("{line}");
    }
}
