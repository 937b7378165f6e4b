//! A mio-style event loop on percore-poll, run on the host.
//!
//! Two "devices" (byte pipes fed by writer threads) are registered with
//! tokens; the loop polls, drains each readable pipe until it would block
//! (edge-triggered, exactly as with mio sockets), deregisters a pipe when its
//! writer hangs up, and stops when a `Waker` fires. Only the `Source` impl and
//! the `Park` hook are percore-specific; the loop itself is mio code.
//!
//! Run: `cargo run -p percore-poll --example pipes`

use std::collections::VecDeque;
use std::error::Error;
use std::io::{self, ErrorKind};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use percore_poll::{
    Events, Interest, Park, Poll, Ready, Registration, Registry, Result, Signal, Source, Token,
    Waker,
};

const PIPE_A: Token = Token(0);
const PIPE_B: Token = Token(1);
const SHUTDOWN: Token = Token(2);

/// The host's way to wait: park the polling thread.
struct ThreadPark(thread::Thread);

impl Park for ThreadPark {
    fn park(&self, timeout: Option<Duration>) {
        match timeout {
            Some(t) => thread::park_timeout(t),
            None => thread::park(),
        }
    }
    fn unpark(&self) {
        self.0.unpark();
    }
}

/// State shared by a pipe's reader (the source) and its writer thread.
#[derive(Default)]
struct Shared {
    bytes: Mutex<(VecDeque<u8>, bool)>,
    signal: Mutex<Option<Signal>>,
}

impl Shared {
    fn notify(&self, ready: Ready) {
        if let Some(signal) = self.signal.lock().unwrap().as_ref() {
            let _ = signal.set(ready);
        }
    }
}

/// The reading end: an event source, like a mio `TcpStream`.
struct Pipe {
    shared: Arc<Shared>,
    registration: Registration,
}

impl Pipe {
    /// Non-blocking read: `WouldBlock` when empty, `Ok(0)` once closed.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut guard = self.shared.bytes.lock().unwrap();
        let (queue, closed) = &mut *guard;
        if queue.is_empty() {
            return if *closed {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        }
        let n = out.len().min(queue.len());
        for (slot, byte) in out.iter_mut().zip(queue.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Source for Pipe {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        self.registration.register(registry, token, interests)?;
        *self.shared.signal.lock().unwrap() = self.registration.signal().cloned();
        // Like epoll: report readiness that existed before registration.
        self.shared.notify(Ready::READABLE);
        Ok(())
    }
    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> Result<()> {
        self.registration.reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &Registry) -> Result<()> {
        *self.shared.signal.lock().unwrap() = None;
        self.registration.deregister(registry)
    }
}

/// Starts a writer thread that sends `messages` lines, then hangs up.
fn pipe(name: &'static str, messages: usize) -> Pipe {
    let shared = Arc::new(Shared::default());
    let writer = Arc::clone(&shared);
    thread::spawn(move || {
        for i in 0..messages {
            let line = format!("{name} says {i}\n");
            writer.bytes.lock().unwrap().0.extend(line.bytes());
            writer.notify(Ready::READABLE);
            thread::sleep(Duration::from_micros(50));
        }
        writer.bytes.lock().unwrap().1 = true;
        writer.notify(Ready::READ_CLOSED);
    });
    Pipe {
        shared,
        registration: Registration::new(),
    }
}

fn main() -> std::result::Result<(), Box<dyn Error>> {
    let mut poll = Poll::with_park(64, ThreadPark(thread::current()))?;
    let mut events = Events::with_capacity(128);

    let mut a = pipe("a", 200);
    let mut b = pipe("b", 300);
    poll.registry()
        .register(&mut a, PIPE_A, Interest::READABLE)?;
    poll.registry()
        .register(&mut b, PIPE_B, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), SHUTDOWN)?);

    let mut received = [0usize; 2];
    let mut open = 2;
    let mut buf = [0u8; 64];
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in events.iter() {
            match event.token() {
                PIPE_A | PIPE_B => {
                    let i = event.token().0;
                    let pipe = if i == 0 { &mut a } else { &mut b };
                    // Edge-triggered: read until WouldBlock or hang-up.
                    loop {
                        match pipe.read(&mut buf) {
                            Ok(0) => {
                                poll.registry().deregister(pipe)?;
                                open -= 1;
                                if open == 0 {
                                    waker.wake()?;
                                }
                                break;
                            }
                            Ok(n) => {
                                received[i] += buf[..n].iter().filter(|&&c| c == b'\n').count()
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                SHUTDOWN => {
                    println!(
                        "pipe a: {} lines, pipe b: {} lines",
                        received[0], received[1]
                    );
                    assert_eq!(received, [200, 300]);
                    return Ok(());
                }
                _ => unreachable!(),
            }
        }
    }
}
