//! The shell's network stack commands: the stack's part of `net`,
//! `serve echo|http`, `get URL`.

use alloc::string::String;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use super::table::Table;
use crate::net::samples::{self, Service, client};
use crate::net::{self, shard};

/// The stack's lines of `net` (if it runs; `net` does not start it):
/// address, then one row per core.
pub fn stack(out: &mut String) {
    if !net::running() {
        return;
    }
    match net::address() {
        Some((address, source)) => {
            let _ = write!(out, "\nnet: {address} via {source}\n");
        }
        None => out.push_str("\nnet: no address yet (DHCP under way)\n"),
    }
    let mut table = Table::new(&[
        "core",
        "rx",
        "rx bytes",
        "tx",
        "tx bytes",
        "steered in",
        "steered out",
        "backlogged",
        "looped",
        "handed",
        "for others",
        "copied",
        "drop ring",
        "drop held",
        "drop queue",
        "drop dead",
        "drop injected",
        "bad ip",
        "bad tcp",
        "bad udp",
        "syn full",
        "tcp",
        "listen",
        "udp",
        "accepted",
        "connected",
    ]);
    for (index, slot) in shard::slots().iter().enumerate() {
        let s = &slot.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        table.row(&[
            &index,
            &load(&s.rx_frames),
            &load(&s.rx_bytes),
            &load(&s.tx_frames),
            &load(&s.tx_bytes),
            &load(&s.steered_in),
            &load(&s.steered_out),
            &load(&s.tx_backlogged),
            &load(&s.looped),
            &load(&s.tx_handed),
            &load(&s.tx_for_others),
            &load(&s.copied_bytes),
            &load(&s.drop_ring_full),
            &load(&s.drop_held),
            &load(&s.drop_queue_full),
            &load(&s.drop_tx_dead),
            &load(&s.drop_injected),
            &load(&s.drop_bad_ip),
            &load(&s.drop_bad_tcp),
            &load(&s.drop_bad_udp),
            &load(&s.drop_syn_backlog),
            &s.tcp_open.load(Ordering::Relaxed),
            &s.listeners.load(Ordering::Relaxed),
            &s.udp_open.load(Ordering::Relaxed),
            &load(&s.accepted),
            &load(&s.connected),
        ]);
    }
    table.render(out);
}

/// `serve echo|http`.
pub async fn serve(name: Option<&str>, out: &mut String) {
    let Some(service) = name.and_then(Service::parse) else {
        out.push_str("usage: serve echo|http");
        return;
    };
    match samples::serve(service).await {
        // The ready line is printed by the service itself.
        Ok(_) => {}
        Err(error) => {
            let _ = write!(out, "serve: {error:?}");
        }
    }
}

/// `get URL`.
pub async fn get(url: Option<&str>, out: &mut String) {
    let Some(url) = url else {
        out.push_str("usage: get http://A.B.C.D[:PORT]/PATH");
        return;
    };
    if let Err(error) = net::configured().await {
        let _ = write!(out, "get: {error}");
        return;
    }
    match client::get(url).await {
        Ok(fetched) => {
            let _ = write!(
                out,
                "get: {} {} bytes fnv1a64={:016x}",
                fetched.status, fetched.body_len, fetched.fnv
            );
            match fetched.checksum_ok() {
                Some(true) => out.push_str(" checksum ok"),
                Some(false) => {
                    let _ = write!(
                        out,
                        " checksum MISMATCH (server says {:016x})",
                        fetched.expected.unwrap_or(0)
                    );
                }
                None => {}
            }
            if fetched.body_len <= 256 {
                out.push('\n');
                out.push_str(&String::from_utf8_lossy(&fetched.preview));
            }
        }
        Err(error) => {
            let _ = write!(out, "get: {error}");
        }
    }
}
