//! Summaries of latency samples, for the shell and the benchmarks (one
//! definition of a percentile for every figure the kernel prints).

/// The `per_cent` percentile of `sorted` (ascending): the sample below
/// which `per_cent`% of the samples lie (nearest rank, rounded down); 0 for
/// no samples.
pub fn percentile(sorted: &[u64], per_cent: usize) -> u64 {
    sorted
        .get(sorted.len().saturating_sub(1) * per_cent.min(100) / 100)
        .copied()
        .unwrap_or(0)
}

/// p50, p99 and the largest sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Summary {
    /// Sorts `samples` and summarises them.
    pub fn of(samples: &mut [u64]) -> Summary {
        samples.sort_unstable();
        Summary {
            p50: percentile(samples, 50),
            p99: percentile(samples, 99),
            max: samples.last().copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut samples: alloc::vec::Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&mut samples);
        assert_eq!((s.p50, s.p99, s.max), (50, 99, 100));
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 99), 7);
    }
}
