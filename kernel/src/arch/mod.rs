//! Hardware support. `x86_64` is the only place in the kernel that knows about the CPU.

pub mod x86_64;
