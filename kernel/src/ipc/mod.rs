//! Services on the reactor: how tasks on any cores talk.
//!
//! - [`channel`]: typed bounded channels (a handle is passed around);
//! - [`port`]: `u64` endpoints addressed by `(core, number)` (the
//!   protocol's `Send`);
//! - [`topic`]: zero-copy publish to subscribers on any cores (`Cursor`);
//! - [`barrier`]: barriers across every core (`Sync`);
//! - [`probe`]: the bus's own round trip (`Ping`/`Pong`);
//! - [`actor`]: state machines driven by a mailbox.
//!
//! Each service keeps its per-core state itself (`reactor::PerCore`) and
//! registers its message handler with the reactor ([`init`]).

pub mod actor;
pub mod barrier;
pub mod channel;
pub mod port;
pub mod probe;
pub mod topic;

use crate::reactor::service::{self, Handlers, Service};

/// Registers every service's handlers with the reactor. Called once, after
/// `reactor::init` and before any service is used.
pub fn init() {
    service::register(
        Service::Port,
        Handlers {
            on_message: port::on_message,
            on_core_stopped: port::on_core_stopped,
        },
    );
    service::register(
        Service::Barrier,
        Handlers {
            on_message: barrier::on_message,
            on_core_stopped: ignore_stop,
        },
    );
    service::register(
        Service::Topic,
        Handlers {
            on_message: topic::on_message,
            on_core_stopped: ignore_stop,
        },
    );
    service::register(
        Service::Probe,
        Handlers {
            on_message: probe::on_message,
            on_core_stopped: ignore_stop,
        },
    );
}

/// A service with nobody waiting on a stopped core in particular.
fn ignore_stop(_: crate::arch::CoreId) {}
