//! Host tests of the reactor against the simulated machine.
