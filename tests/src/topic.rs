//! Topic tests: one publisher, a subscriber on every core, backpressure,
//! and the error cases of creating and joining topics.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::time::Duration;

use percore_kernel::Kernel;
use percore_kernel::arch::{CoreId, cpu};
use percore_kernel::ipc::topic::{self, PushError, TopicError};
use percore_kernel::reactor::{SpawnOptions, block_on, priority, sleep, spawn_on, spawn_with};

use crate::harness::{Kind, Test};

/// This file's tests.
pub const TESTS: &[Test] = &[
    Test::new("topic_fan_out_every_core", Kind::Normal, fan_out_every_core),
    Test::new("topic_errors", Kind::Normal, errors),
];

const VALUES: u64 = 10_000;

static SUBSCRIBED: AtomicU32 = AtomicU32::new(0);
static JOINED: AtomicBool = AtomicBool::new(false);

/// A publisher on core 0 sends 0..10000 through a 64-slot topic to one
/// subscriber per core (all joined first): each receives every value once,
/// in order; the publisher had to wait for room (backpressure).
pub fn fan_out_every_core(_: &Kernel) -> Result<(), String> {
    crate::reactor::start_reactors();
    let n = cpu::online_cores() as u16;
    SUBSCRIBED.store(0, Ordering::SeqCst);
    let mut publisher = topic::create::<u64>(1, 64).map_err(|e| format!("create: {e:?}"))?;
    let subscribers: Vec<_> = (0..n)
        .map(|core| {
            spawn_on(CoreId(core), priority(32), async move {
                let mut sub = topic::subscribe::<u64>(CoreId(0), 1)
                    .await
                    .map_err(|e| format!("core {core}: subscribe: {e:?}"))?;
                SUBSCRIBED.fetch_add(1, Ordering::SeqCst);
                let (mut count, mut sum) = (0u64, 0u64);
                // Where each of the first 64 values sat when read in place:
                // every subscriber must have read the same slot (zero copy).
                let mut slots = Vec::with_capacity(64);
                while let Some((value, slot)) = sub
                    .recv_with(|v: &u64| (*v, core::ptr::from_ref(v) as usize))
                    .await
                {
                    if value != count {
                        return Err(format!("core {core}: got {value} as value #{count}"));
                    }
                    if slots.len() < 64 {
                        slots.push(slot);
                    }
                    count += 1;
                    sum += value;
                }
                Ok((count, sum, slots))
            })
        })
        .collect();
    // Pinned, so it publishes from the topic's own core throughout.
    let publishing = spawn_with(
        CoreId(0),
        SpawnOptions::new(priority(32)).pinned(),
        async move {
            let mut waited = 0u32;
            while SUBSCRIBED.load(Ordering::SeqCst) < u32::from(n) {
                waited += 1;
                if waited > 20_000 {
                    return Err(format!(
                        "only {} of {n} subscribers joined",
                        SUBSCRIBED.load(Ordering::SeqCst)
                    ));
                }
                sleep(Duration::from_micros(100)).await;
            }
            let mut full = 0u32;
            for value in 0..VALUES {
                if let Err(PushError::Full(value)) = publisher.try_publish(value) {
                    full += 1;
                    publisher.publish(value).await;
                }
            }
            Ok(full)
        },
    );
    let full = block_on(publishing)?;
    let expected_sum = VALUES * (VALUES - 1) / 2;
    let mut first_slots: Option<Vec<usize>> = None;
    for (core, handle) in subscribers.into_iter().enumerate() {
        match block_on(handle)? {
            (count, sum, slots) if count == VALUES && sum == expected_sum => match &first_slots {
                None => first_slots = Some(slots),
                Some(first) if *first == slots => {}
                Some(_) => return Err(format!("core {core} read copies, not the ring slots")),
            },
            (count, sum, _) => {
                return Err(format!("core {core}: {count} values summing to {sum}"));
            }
        }
    }
    if first_slots.is_some_and(|s| s.len() != 64 || s[0] == s[1]) {
        return Err(String::from("in-place reads did not walk the ring's slots"));
    }
    percore_kernel::println!(
        "topic: {VALUES} values to {n} subscribers, publisher waited for room {full} times"
    );
    if full == 0 {
        return Err(String::from("a 64-slot topic never filled up"));
    }
    Ok(())
}

/// Errors come back as values; a dropped subscriber stops holding the
/// publisher back; `recv` ends with `None` once the publisher is gone.
pub fn errors(_: &Kernel) -> Result<(), String> {
    crate::reactor::start_reactors();
    let far = CoreId(cpu::online_cores() as u16 - 1);
    let check = |what: &str, got: Result<(), TopicError>, want: TopicError| {
        if got == Err(want) {
            Ok(())
        } else {
            Err(format!("{what}: got {got:?}, expected {want:?}"))
        }
    };
    let mut publisher = topic::create::<u64>(2, 4).map_err(|e| format!("create: {e:?}"))?;
    check(
        "same number twice",
        topic::create::<u64>(2, 4).map(drop),
        TopicError::NumberInUse,
    )?;
    check(
        "zero capacity",
        topic::create::<u64>(3, 0).map(drop),
        TopicError::BadCapacity,
    )?;
    check(
        "missing topic, local",
        block_on(topic::subscribe::<u64>(CoreId(0), 999)).map(drop),
        TopicError::NoSuchTopic,
    )?;
    check(
        "wrong type, local",
        block_on(topic::subscribe::<u32>(CoreId(0), 2)).map(drop),
        TopicError::WrongType,
    )?;
    // The same from the last core, over the bus (on one core: locally again).
    let (missing, wrong) = block_on(spawn_on(far, priority(32), async {
        (
            topic::subscribe::<u64>(CoreId(0), 999).await.map(drop),
            topic::subscribe::<u32>(CoreId(0), 2).await.map(drop),
        )
    }));
    check("missing topic, remote", missing, TopicError::NoSuchTopic)?;
    check("wrong type, remote", wrong, TopicError::WrongType)?;

    // A subscriber that never reads fills the ring; dropping it frees it.
    let slow = block_on(topic::subscribe::<u64>(CoreId(0), 2)).map_err(|e| format!("{e:?}"))?;
    for value in 0..4 {
        publisher
            .try_publish(value)
            .map_err(|e| format!("publish {value} into a free ring: {e:?}"))?;
    }
    if publisher.try_publish(4) != Err(PushError::Full(4)) {
        return Err(String::from("a full topic accepted a value"));
    }
    drop(slow);
    for value in 4..4 + 4 + 10 {
        publisher
            .try_publish(value)
            .map_err(|e| format!("publish {value} after the slow subscriber left: {e:?}"))?;
    }

    // A remote subscriber waiting in `recv` reads what is left, then `None`.
    JOINED.store(false, Ordering::SeqCst);
    let reader = spawn_on(far, priority(32), async {
        let mut sub = topic::subscribe::<u64>(CoreId(0), 2)
            .await
            .map_err(|e| format!("{e:?}"))?;
        JOINED.store(true, Ordering::SeqCst);
        let mut got = Vec::new();
        while let Some(value) = sub.recv().await {
            got.push(value);
        }
        Ok::<_, String>(got)
    });
    block_on(async {
        while !JOINED.load(Ordering::SeqCst) && !reader.is_finished() {
            sleep(Duration::from_micros(100)).await;
        }
    });
    publisher.try_publish(100).map_err(|e| format!("{e:?}"))?;
    publisher.try_publish(101).map_err(|e| format!("{e:?}"))?;
    drop(publisher);
    let got = block_on(reader)?;
    if got != [100, 101] {
        return Err(format!("after the publisher left, read {got:?}"));
    }
    check(
        "closed topic",
        block_on(topic::subscribe::<u64>(CoreId(0), 2)).map(drop),
        TopicError::NoSuchTopic,
    )?;
    // The number is free again.
    topic::create::<u64>(2, 4).map_err(|e| format!("re-create: {e:?}"))?;
    Ok(())
}
