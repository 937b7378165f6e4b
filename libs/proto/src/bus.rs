//! [`Bus::new`]: builds the whole intercore fabric up front: an N x N matrix
//! of SPSC rings (ring `i -> j` is written only by core `i` and read only by
//! core `j`), one broadcast publisher per core with every other core
//! subscribed, and one doorbell per core. Nothing on the bus allocates
//! afterwards except the overflow queues of
//! [`Endpoint::send_or_queue`](crate::Endpoint::send_or_queue).

use alloc::sync::Arc;
use alloc::vec::Vec;

use percore_ring::spmc::broadcast;
use percore_ring::spsc;
use percore_ring::wait::Doorbell;

use crate::core_set::MAX_CORES;
use crate::endpoint::{Endpoint, Parts};
use crate::error::BusError;
use crate::id::CoreId;
use crate::inbound::{Inbound, Source};
use crate::message::Message;

/// The constructor of the intercore bus (it has no instances: the bus *is*
/// its endpoints).
///
/// ```
/// use percore_proto::{Bus, CoreId, Message, TaskRef};
/// let mut eps = Bus::new(4, 64).unwrap();
/// let mut core3 = eps.pop().unwrap(); // move each endpoint to its core
/// let _ = eps[0].send(CoreId(3), Message::Wake { task: TaskRef(1) }).unwrap();
/// core3.drain(64, |from, msg| assert_eq!((from, msg), (CoreId(0), Message::Wake { task: TaskRef(1) })));
/// ```
pub enum Bus {}

impl Bus {
    /// Builds a bus for `cores` cores (1..=[`MAX_CORES`]) whose rings have
    /// `ring_capacity` slots each (rounded up to a power of two), and returns
    /// one [`Endpoint`] per core, endpoint `i` for `CoreId(i)`.
    ///
    /// Memory: `cores * cores` rings of `ring_capacity` messages (24 bytes
    /// each), all allocated here.
    ///
    /// ```
    /// use percore_proto::{Bus, BusError, MAX_CORES};
    /// assert_eq!(Bus::new(2, 16).unwrap().len(), 2);
    /// assert_eq!(Bus::new(MAX_CORES + 1, 16).err(), Some(BusError::TooManyCores(MAX_CORES + 1)));
    /// ```
    #[expect(
        clippy::new_ret_no_self,
        reason = "the bus exists only as its endpoints, one per core"
    )]
    pub fn new(cores: usize, ring_capacity: usize) -> Result<Vec<Endpoint>, BusError> {
        match cores {
            0 => return Err(BusError::NoCores),
            n if n > MAX_CORES => return Err(BusError::TooManyCores(n)),
            _ => {}
        }
        let doorbells: Arc<[Doorbell]> = (0..cores).map(|_| Doorbell::new()).collect();
        let mut outbound: Vec<Vec<_>> = (0..cores)
            .map(|_| (0..cores).map(|_| None).collect())
            .collect();
        let mut inbound: Vec<Vec<(CoreId, Source)>> = (0..cores).map(|_| Vec::new()).collect();
        let mut publishers = Vec::with_capacity(cores);
        for (from, row) in outbound.iter_mut().enumerate() {
            let sender = CoreId(from as u16);
            let mut publisher =
                broadcast::create_with(ring_capacity, cores.saturating_sub(1).max(1), || {
                    Message::Stop
                })
                .map_err(BusError::Capacity)?;
            for (to, sources) in inbound.iter_mut().enumerate() {
                if to == from {
                    continue;
                }
                let (tx, rx) = spsc::channel(ring_capacity).map_err(BusError::Capacity)?;
                row[to] = Some(tx);
                let sub = publisher
                    .subscribe()
                    .map_err(|_| BusError::TooManyCores(cores))?;
                sources.push((sender, Source::Ring(rx)));
                sources.push((sender, Source::Broadcast(sub)));
            }
            publishers.push(publisher);
        }
        let endpoints = outbound
            .into_iter()
            .zip(inbound)
            .zip(publishers)
            .enumerate()
            .map(|(id, ((outbound, sources), publisher))| {
                Endpoint::new(Parts {
                    id: CoreId(id as u16),
                    doorbells: doorbells.clone(),
                    outbound,
                    publisher,
                    inbound: Inbound::new(sources),
                })
            })
            .collect();
        Ok(endpoints)
    }
}
