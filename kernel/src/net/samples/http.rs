//! HTTP/1.1 on TCP port 80 through `percore-http`: keep-alive, `GET /`
//! ([`percore_http::INDEX_BODY`]), `GET /stats` (JSON of every core's
//! reactor and network counters), 404 and 405; a malformed request gets
//! 400 and the connection is closed. One listener per core; each
//! connection is a task pinned on its core.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::sync::atomic::{AtomicU64, Ordering};

use embedded_io_async::Write;
use percore_http::{
    BAD_REQUEST_BODY, MAX_BODY, MAX_HEAD, Route, Status, fixed, parse, respond, route,
};

use super::spawn_here;
use crate::arch::{CoreId, cpu};
use crate::drivers::virtio::net::DropReason;
use crate::ipc::channel::Sender;
use crate::net::{Error, Result, Shutdown, TcpListener, TcpStream, shard};
use crate::reactor::{self, PerCore};

/// The HTTP port.
pub const PORT: u16 = 80;

/// Requests answered, per core.
static REQUESTS: PerCore<AtomicU64> = PerCore::new();

/// Core `core`'s part: binds, reports to `ready`, serves forever.
pub async fn run(core: CoreId, mut ready: Sender<Result<()>>) {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT));
    let mut listener = match TcpListener::bind(addr) {
        Ok(listener) => {
            ready.send(Ok(())).await;
            listener
        }
        Err(error) => {
            ready.send(Err(error)).await;
            return;
        }
    };
    drop(ready);
    loop {
        match listener.accept_async().await {
            Ok((stream, _)) => spawn_here(core, connection(stream)),
            Err(error) => log::warn!("http: accept on core {core}: {error}"),
        }
    }
}

/// Bytes read at once.
const CHUNK: usize = 2048;

/// Serves requests on one connection until either side closes it. An idle
/// connection (no partial request) holds no buffers while it waits.
pub async fn connection(mut stream: TcpStream) {
    let mut input: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        let (answer, used) = match parse(&input) {
            Ok(Some(request)) => (
                Some((route(request.method, request.path), request.keep_alive)),
                request.len,
            ),
            Ok(None) => (None, 0),
            Err(_) => {
                out.clear();
                respond(
                    Status::BadRequest,
                    "text/plain",
                    BAD_REQUEST_BODY,
                    false,
                    &mut out,
                );
                let _ = stream.write_all(&out).await;
                break;
            }
        };
        let Some((route, keep_alive)) = answer else {
            if input.len() > MAX_HEAD + MAX_BODY {
                break;
            }
            let start = input.len();
            input.resize(start + CHUNK, 0);
            match embedded_io::Read::read(&mut stream, &mut input[start..]) {
                Ok(0) => break,
                Ok(n) => input.truncate(start + n),
                Err(Error::WouldBlock) => {
                    input.truncate(start);
                    if input.is_empty() {
                        input = Vec::new();
                        out = Vec::new();
                    }
                    if stream.readable().await.is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
            continue;
        };
        input.drain(..used);
        out.clear();
        match route {
            Route::Stats => {
                let body = stats_json();
                respond(
                    Status::Ok,
                    "application/json",
                    body.as_bytes(),
                    keep_alive,
                    &mut out,
                );
            }
            other => {
                let (status, kind, body) = fixed(other);
                respond(status, kind, body, keep_alive, &mut out);
            }
        }
        if let Some(count) = REQUESTS.get(cpu::core_id()) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if stream.write_all(&out).await.is_err() || !keep_alive {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Every core's reactor and network counters as one JSON object.
pub fn stats_json() -> String {
    let mut json = String::from("{\"cores\":[");
    for (index, r) in reactor::reactors().iter().enumerate() {
        let core = CoreId(index as u16);
        let s = &r.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        if index > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"core\":{index},\"tasks\":{},\"polls\":{},\"sleeps\":{},\"messages_in\":{},\"messages_out\":{},\"http_requests\":{}",
            s.tasks.load(Ordering::Relaxed),
            load(&s.polls),
            load(&s.sleeps),
            load(&s.messages_in),
            load(&s.messages_out),
            REQUESTS.get(core).map_or(0, load),
        );
        if let Some(slot) = shard::slot(core) {
            let n = &slot.stats;
            let _ = write!(
                json,
                ",\"rx_frames\":{},\"rx_bytes\":{},\"tx_frames\":{},\"tx_bytes\":{},\"steered_in\":{},\"steered_out\":{},\"looped\":{},\"tx_handed\":{},\"tx_for_others\":{},\"copied_bytes\":{},\"drop_ring_full\":{},\"drop_held\":{},\"drop_queue_full\":{},\"drop_tx_dead\":{},\"drop_injected\":{},\"drop_bad_ip\":{},\"drop_bad_tcp\":{},\"drop_bad_udp\":{},\"drop_syn_backlog\":{},\"tcp_open\":{},\"udp_open\":{},\"accepted\":{},\"connected\":{},\"buffers_lent\":{},\"buffers_returned\":{},\"turns\":{},\"ns_take\":{},\"ns_flush\":{},\"ns_poll\":{},\"ns_report\":{}",
                load(&n.rx_frames),
                load(&n.rx_bytes),
                load(&n.tx_frames),
                load(&n.tx_bytes),
                load(&n.steered_in),
                load(&n.steered_out),
                load(&n.looped),
                load(&n.tx_handed),
                load(&n.tx_for_others),
                load(&n.copied_bytes),
                load(&n.drop_ring_full),
                load(&n.drop_held),
                load(&n.drop_queue_full),
                load(&n.drop_tx_dead),
                load(&n.drop_injected),
                load(&n.drop_bad_ip),
                load(&n.drop_bad_tcp),
                load(&n.drop_bad_udp),
                load(&n.drop_syn_backlog),
                n.tcp_open.load(Ordering::Relaxed),
                n.udp_open.load(Ordering::Relaxed),
                load(&n.accepted),
                load(&n.connected),
                load(&n.buffers_lent),
                load(&n.buffers_returned),
                load(&n.turns),
                load(&n.ns_take),
                load(&n.ns_flush),
                load(&n.ns_poll),
                load(&n.ns_report),
            );
        }
        json.push('}');
    }
    json.push_str("],\"pairs\":[");
    let pairs = crate::drivers::virtio::net::device().map_or(&[][..], |nic| nic.pairs());
    for (index, pair) in pairs.iter().enumerate() {
        let s = &pair.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        if index > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"pair\":{index},\"owner\":{},\"rx_frames\":{},\"tx_frames\":{},\"tx_waits\":{},\"rx_csum_valid\":{},\"tx_csum_offloaded\":{},\"rx_lent\":{},\"rx_waiting\":{},\"drops\":{{",
            pair.owner.index(),
            load(&s.rx_frames),
            load(&s.tx_frames),
            load(&s.tx_waits),
            load(&s.rx_csum_valid),
            load(&s.tx_csum_offloaded),
            pair.lent(),
            pair.waiting(),
        );
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            let _ = write!(json, "\"{}\":{}", reason.name(), load(&s.drops[i]));
        }
        json.push_str("}}");
    }
    let _ = writeln!(
        json,
        "],\"heap_used_bytes\":{}}}",
        crate::mem::heap::used_bytes()
    );
    json
}
