//! What percore's host benchmarks share (a dev-dependency of the library
//! crates' benches, never of the crates themselves): pinning a thread to a
//! core, medians and percentiles, the load average that tells a noisy run,
//! tables with aligned columns, and the machine-readable `bench` lines of
//! DESIGN.md (`bench <row> <ours> [<peer> <value>] <unit>`).

/// Pins the calling thread to CPU `core` (best effort: on a machine with
/// fewer cores the call fails and the thread stays where it is).
pub fn pin(core: usize) {
    // SAFETY: `cpu_set_t` is plain data; zeroed is an empty set, CPU_SET only
    // writes inside it, and sched_setaffinity(0, ..) affects this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The median of `values` (the upper one of an even count); NaN for none.
///
/// ```
/// assert_eq!(percore_benchkit::median(vec![3.0, 1.0, 2.0]), 2.0);
/// assert!(percore_benchkit::median(vec![]).is_nan());
/// ```
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `f` `reps` times; the median of each of its `K` outputs.
///
/// ```
/// let mut n = 0.0;
/// let [a, b] = percore_benchkit::median_of(3, || { n += 1.0; [n, -n] });
/// assert_eq!((a, b), (2.0, -2.0));
/// ```
pub fn median_of<const K: usize>(reps: usize, mut f: impl FnMut() -> [f64; K]) -> [f64; K] {
    let runs: Vec<[f64; K]> = (0..reps).map(|_| f()).collect();
    std::array::from_fn(|k| median(runs.iter().map(|r| r[k]).collect()))
}

/// The `p` quantile (0.0..=1.0) of `sorted` (ascending), by nearest rank
/// rounded down; 0 for no samples.
///
/// ```
/// let s: Vec<u64> = (1..=100).collect();
/// assert_eq!(percore_benchkit::percentile(&s, 0.5), 50.0);
/// assert_eq!(percore_benchkit::percentile(&s, 0.99), 99.0);
/// ```
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)) as usize] as f64
}

/// The 1, 5 and 15-minute load averages, as `/proc/loadavg` says
/// (`unknown` where it cannot be read): print them before and after a run
/// so that a noisy run shows itself.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| String::from("unknown"))
}

/// One `bench` line of DESIGN.md: `bench <row> <ours> <unit>`, or with the
/// best peer measured in the same run, `bench <row> <ours> <peer> <value> <unit>`.
///
/// ```
/// assert_eq!(percore_benchkit::bench_line("rtt", 1.5, None, "ns"), "bench rtt 1.5 ns");
/// assert_eq!(
///     percore_benchkit::bench_line("tp", 2.0, Some(("rtrb", 1.0)), "msgs/s"),
///     "bench tp 2.0 rtrb 1.0 msgs/s"
/// );
/// ```
pub fn bench_line(row: &str, ours: f64, peer: Option<(&str, f64)>, unit: &str) -> String {
    match peer {
        Some((name, value)) => format!("bench {row} {ours:.1} {name} {value:.1} {unit}"),
        None => format!("bench {row} {ours:.1} {unit}"),
    }
}

/// A table printed with aligned columns (first column left-aligned, the
/// others right-aligned), as a Markdown table so it also reads in a note.
///
/// ```
/// let mut t = percore_benchkit::Table::new(&["row", "value"]);
/// t.row(vec!["spsc".into(), "12.5".into()]);
/// assert_eq!(t.render(), "| row  | value |\n|------|-------|\n| spsc |  12.5 |\n");
/// ```
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .filter_map(|r| r.get(i))
                    .map(String::len)
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::from("|");
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                if i == 0 {
                    out.push_str(&format!(" {cell:<width$} |"));
                } else {
                    out.push_str(&format!(" {cell:>width$} |"));
                }
            }
            out.push('\n');
            out
        };
        let mut out = line(&self.header);
        out.push('|');
        for width in &widths {
            out.push_str(&"-".repeat(width + 2));
            out.push('|');
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// Prints the table.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Repetitions of a benchmark: `PERCORE_BENCH_REPS` if set (at least 1),
/// else `default`.
///
/// ```
/// assert!(percore_benchkit::reps(7) >= 1);
/// ```
pub fn reps(default: usize) -> usize {
    std::env::var("PERCORE_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// Median and range of one figure over the repetitions (NaN for none).
///
/// ```
/// let s = percore_benchkit::Stat::of(vec![3.0, 1.0, 2.0]);
/// assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
/// assert!(percore_benchkit::Stat::of(vec![]).median.is_nan());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// The median, minimum and maximum of `values`.
    pub fn of(mut values: Vec<f64>) -> Stat {
        values.sort_by(f64::total_cmp);
        Stat {
            median: values.get(values.len() / 2).copied().unwrap_or(f64::NAN),
            min: values.first().copied().unwrap_or(f64::NAN),
            max: values.last().copied().unwrap_or(f64::NAN),
        }
    }
}
