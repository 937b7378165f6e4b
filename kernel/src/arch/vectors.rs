//! The interrupt vectors one core hands out to device interrupts (MSI-X):
//! a bitmap over a fixed range, shared by the machine and the simulation.
//! Vectors are a per-core resource: the same vector number on two cores
//! names two different interrupts, so each core has its own pool.

/// A pool of the vectors `first..first + count` (`count <= 192`).
#[derive(Clone, Debug)]
pub struct VectorPool {
    first: u8,
    count: u8,
    /// Bit `i`: vector `first + i` is taken.
    taken: [u64; 3],
}

impl VectorPool {
    /// All of `first..first + count` free.
    pub const fn new(first: u8, count: u8) -> VectorPool {
        VectorPool {
            first,
            count,
            taken: [0; 3],
        }
    }

    /// Takes the lowest free vector, if any.
    pub fn allocate(&mut self) -> Option<u8> {
        let index = (0..self.count).find(|&i| !self.is_taken_index(i))?;
        self.taken[usize::from(index / 64)] |= 1 << (index % 64);
        Some(self.first + index)
    }

    /// Gives `vector` back. False if it is not one of this pool's taken vectors.
    pub fn free(&mut self, vector: u8) -> bool {
        match self.index(vector) {
            Some(i) if self.is_taken_index(i) => {
                self.taken[usize::from(i / 64)] &= !(1 << (i % 64));
                true
            }
            _ => false,
        }
    }

    fn index(&self, vector: u8) -> Option<u8> {
        vector.checked_sub(self.first).filter(|&i| i < self.count)
    }

    fn is_taken_index(&self, i: u8) -> bool {
        self.taken[usize::from(i / 64)] & (1 << (i % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::VectorPool;

    #[test]
    fn hands_out_each_vector_once_until_freed() {
        let mut pool = VectorPool::new(0x40, 130);
        let all: alloc::vec::Vec<u8> = core::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(all.len(), 130);
        assert_eq!((all[0], all[129]), (0x40, 0x40 + 129));
        assert_eq!(pool.allocate(), None);
        assert!(pool.free(0x40 + 70));
        assert!(!pool.free(0x40 + 70), "freed twice");
        assert!(!pool.free(0x3F), "below the range");
        assert!(!pool.free(0x40 + 130), "above the range");
        assert_eq!(pool.allocate(), Some(0x40 + 70));
        assert_eq!(pool.allocate(), None);
    }
}
