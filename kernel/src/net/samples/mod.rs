//! The sample services, each a set of pinned tasks (one per core, since
//! every core serves the connections its flows hash to):
//!
//! - [`echo`]: TCP and UDP port 7;
//! - [`http`]: HTTP/1.1 on TCP port 80 through `percore-http` (`/`,
//!   `/stats`, 404, 405, 400 then close);
//! - [`client`]: an HTTP GET client that checks a body's checksum.
//!
//! Started from the shell (`serve echo`, `serve http`, `get URL`) or at
//! boot by the fw_cfg file [`SERVE_FILE`] (`echo,http`). Once the
//! listeners are open on every core the service prints its ready line,
//! `serve: echo ready on tcp/7 udp/7 cores=N` or `serve: http ready on
//! tcp/80 cores=N`.

pub mod client;
pub mod echo;
pub mod http;

use alloc::vec::Vec;
use core::future::Future;
use core::sync::atomic::{AtomicBool, Ordering};

use super::{Error, Result};
use crate::arch::{CoreId, cpu};
use crate::drivers::fw_cfg;
use crate::ipc::channel;
use crate::reactor::{self, SpawnOptions};

/// The boot configuration file naming the services to start (`echo,http`).
pub const SERVE_FILE: &str = "opt/percore/serve";
/// The services' priority.
pub const PRIORITY: u8 = 40;

/// A sample service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Echo,
    Http,
}

impl Service {
    /// `echo` or `http`.
    pub fn parse(name: &str) -> Option<Service> {
        match name.trim() {
            "echo" => Some(Service::Echo),
            "http" => Some(Service::Http),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Http => "http",
        }
    }
}

/// Why a service did not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeError {
    /// It runs already.
    AlreadyServing,
    /// A core could not open its listener.
    Socket(Error),
}

static SERVING: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];

/// Spawns `task` pinned on `core` (sockets belong to their core).
pub fn spawn_here<F>(core: CoreId, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let options = SpawnOptions::new(reactor::priority(PRIORITY)).pinned();
    drop(reactor::spawn_with(core, options, task));
}

/// Starts `service` on every core once the network is configured, and
/// prints its ready line once every core listens. Returns the core count.
pub async fn serve(service: Service) -> core::result::Result<usize, ServeError> {
    super::configured().await.map_err(ServeError::Socket)?;
    if SERVING[service as usize].swap(true, Ordering::AcqRel) {
        return Err(ServeError::AlreadyServing);
    }
    let cores = cpu::online_cores();
    let (tx, mut rx) =
        channel::channel::<Result<()>>(cores).map_err(|_| ServeError::Socket(Error::NoNetwork))?;
    for index in 0..cores {
        let core = CoreId(index as u16);
        let tx = tx.clone();
        match service {
            Service::Echo => spawn_here(core, echo::run(core, tx)),
            Service::Http => spawn_here(core, http::run(core, tx)),
        }
    }
    drop(tx);
    let mut failure = None;
    for _ in 0..cores {
        match rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(error)) => failure = Some(error),
            None => failure = Some(Error::NoNetwork),
        }
    }
    if let Some(error) = failure {
        SERVING[service as usize].store(false, Ordering::Release);
        log::error!("serve: {} failed on a core: {error}", service.name());
        return Err(ServeError::Socket(error));
    }
    match service {
        Service::Echo => crate::println!("serve: echo ready on tcp/7 udp/7 cores={cores}"),
        Service::Http => crate::println!("serve: http ready on tcp/80 cores={cores}"),
    }
    Ok(cores)
}

/// The services [`SERVE_FILE`] names (unknown names are logged and skipped).
pub fn configured_services() -> Vec<Service> {
    let mut buffer = [0u8; 128];
    let Ok(text) = fw_cfg::read_text(SERVE_FILE, &mut buffer) else {
        return Vec::new();
    };
    text.split(',')
        .filter(|n| !n.trim().is_empty())
        .filter_map(|name| {
            let service = Service::parse(name);
            if service.is_none() {
                log::warn!("serve: unknown service `{}` in {SERVE_FILE}", name.trim());
            }
            service
        })
        .collect()
}

/// Starts the services of [`SERVE_FILE`] (a task on core 0 waits for the
/// address, then starts them).
pub fn start_configured() {
    let services = configured_services();
    if services.is_empty() {
        return;
    }
    spawn_here(CoreId(0), async move {
        for service in services {
            if let Err(error) = serve(service).await {
                log::error!("serve: {}: {error:?}", service.name());
            }
        }
    });
}
