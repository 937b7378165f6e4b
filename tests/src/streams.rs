//! Stream tests: the kernel's receiving ends as `futures_core::Stream`s and
//! its sending ends as `futures_sink::Sink`s, composed with `futures-util`
//! across cores — a port piped through `map` and `filter` into a topic, two
//! channels merged, and a stream forwarded across cores with backpressure;
//! every value accounted for.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::ready;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use futures_util::{StreamExt, stream};
use percore_kernel::Kernel;
use percore_kernel::arch::CoreId;
use percore_kernel::ipc::{channel, port, topic};
use percore_kernel::reactor::{block_on, priority, sleep, spawn_on};

use crate::harness::{Kind, Test};
use crate::reactor::{cores, start_reactors};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new(
        "streams_port_map_filter_into_topic",
        Kind::Normal,
        port_map_filter_into_topic,
    ),
    Test::new(
        "streams_merge_two_channels",
        Kind::Normal,
        merge_two_channels,
    ),
    Test::new(
        "streams_forward_across_cores_with_backpressure",
        Kind::Normal,
        forward_with_backpressure,
    ),
];

/// Core `i` of the machine, wrapping around on small machines.
fn core(i: u16) -> CoreId {
    CoreId(i % cores())
}

const PORT: u32 = 701;
const TOPIC: u32 = 71;
const PIPED: u64 = 2_000;

/// Values sent to a port on the last core flow through
/// `take → map(×3) → filter(even)` and `forward` into a topic there; a
/// subscriber on core 0 reads exactly the mapped, filtered values, in order,
/// and its stream ends when the pipeline closes the topic.
pub fn port_map_filter_into_topic(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let home = core(cores() - 1);
    let pipeline = spawn_on(home, priority(32), async {
        let port = port::open(PORT, 64).map_err(|e| format!("open: {e:?}"))?;
        let publisher = topic::create::<u64>(TOPIC, 16).map_err(|e| format!("create: {e:?}"))?;
        while publisher.subscribers() == 0 {
            sleep(Duration::from_millis(1)).await;
        }
        port.take(PIPED as usize)
            .map(|v| v * 3)
            .filter(|v| ready(v % 2 == 0))
            .map(Ok)
            .forward(publisher)
            .await
            .map_err(|e| format!("{e:?}"))
    });
    let subscriber = spawn_on(core(0), priority(32), async move {
        loop {
            match topic::subscribe::<u64>(home, TOPIC).await {
                Ok(sub) => return Ok(sub.collect::<Vec<u64>>().await),
                Err(topic::TopicError::NoSuchTopic) => sleep(Duration::from_millis(1)).await,
                Err(e) => return Err(format!("subscribe: {e:?}")),
            }
        }
    });
    let sender = spawn_on(core(1), priority(32), async move {
        for v in 0..PIPED {
            loop {
                match port::send(home, PORT, v).await {
                    Ok(()) => break,
                    Err(port::PortError::NoSuchPort { .. }) => {
                        sleep(Duration::from_millis(1)).await
                    }
                    Err(e) => return Err(format!("send {v}: {e:?}")),
                }
            }
        }
        Ok(())
    });
    let (piped, got, sent) = block_on(async { (pipeline.await, subscriber.await, sender.await) });
    piped?;
    sent?;
    let got = got?;
    let want: Vec<u64> = (0..PIPED).map(|v| v * 3).filter(|v| v % 2 == 0).collect();
    if got != want {
        return Err(format!(
            "the subscriber read {} values (first {:?}), want {} (first {:?})",
            got.len(),
            got.get(..4),
            want.len(),
            want.get(..4)
        ));
    }
    Ok(())
}

const MERGED: u64 = 1_000;

/// Two channels fed from two cores, merged with `stream::select` on a
/// third: every value of both arrives once, each channel's in its order.
pub fn merge_two_channels(_: &Kernel) -> Result<(), String> {
    start_reactors();
    let (Ok((a_tx, a_rx)), Ok((b_tx, b_rx))) = (channel::channel(16), channel::channel(16)) else {
        return Err(String::from("channel"));
    };
    let producers: Vec<_> = [(a_tx, 0), (b_tx, MERGED)]
        .into_iter()
        .enumerate()
        .map(|(i, (mut tx, base))| {
            spawn_on(core(i as u16 + 1), priority(32), async move {
                for v in base..base + MERGED {
                    tx.send(v).await;
                }
            })
        })
        .collect();
    let merged = block_on(spawn_on(core(0), priority(32), async move {
        stream::select(a_rx, b_rx).collect::<Vec<u64>>().await
    }));
    block_on(async {
        for producer in producers {
            producer.await;
        }
    });
    let (a, b): (Vec<u64>, Vec<u64>) = merged.iter().partition(|&&v| v < MERGED);
    if a != (0..MERGED).collect::<Vec<_>>() || b != (MERGED..2 * MERGED).collect::<Vec<_>>() {
        return Err(format!(
            "merged {} values: {} from a, {} from b (in order: {}, {})",
            merged.len(),
            a.len(),
            b.len(),
            a.is_sorted(),
            b.is_sorted()
        ));
    }
    Ok(())
}

const FORWARDED: u64 = 5_000;
const CAPACITY: usize = 4;
const CHUNK: usize = 10;
static RECEIVED: AtomicUsize = AtomicUsize::new(0);

/// A stream on one core is forwarded into a 4-slot channel whose receiver,
/// on another core, reads in chunks of 10 and pauses now and then: the
/// forward finishes only once the reader has counted all but what the
/// channel, one chunk and the sink's held-back value can hold —
/// backpressure — and the reader gets every value once, in order.
pub fn forward_with_backpressure(_: &Kernel) -> Result<(), String> {
    start_reactors();
    RECEIVED.store(0, Ordering::SeqCst);
    let (tx, rx) = channel::channel::<u64>(CAPACITY).map_err(|e| format!("{e:?}"))?;
    let producer = spawn_on(core(1), priority(32), async move {
        let forwarded = stream::iter(0..FORWARDED).map(Ok).forward(tx).await;
        (forwarded, RECEIVED.load(Ordering::SeqCst))
    });
    let consumer = spawn_on(core(2), priority(32), async move {
        let mut chunks = rx.chunks(CHUNK);
        let (mut next, mut sum) = (0u64, 0u64);
        while let Some(chunk) = chunks.next().await {
            for v in chunk {
                if v != next {
                    return Err(format!("got {v} where {next} was due"));
                }
                next += 1;
                sum += v;
                RECEIVED.fetch_add(1, Ordering::SeqCst);
            }
            if next % 500 == 0 {
                sleep(Duration::from_micros(200)).await;
            }
        }
        Ok((next, sum))
    });
    let ((forwarded, seen_at_end), received) = block_on(async { (producer.await, consumer.await) });
    forwarded.map_err(|e| format!("{e:?}"))?;
    let (count, sum) = received?;
    if count != FORWARDED || sum != FORWARDED * (FORWARDED - 1) / 2 {
        return Err(format!("received {count} values (sum {sum})"));
    }
    let ahead = FORWARDED as usize - seen_at_end;
    if ahead > CAPACITY + CHUNK + 1 {
        return Err(format!(
            "the producer finished {ahead} values ahead of the reader (no backpressure)"
        ));
    }
    Ok(())
}
