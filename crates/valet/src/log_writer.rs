//! The server's log lines, batched into few writes.
//!
//! One `write(2)` per line was 5 % of a hot scenario's CPU (bench/README.md, "The access
//! log"). [`BatchedStderr`] appends each line to a buffer; a thread writes what gathered to
//! standard error at most [`GATHER`] after the first line of a batch (as nginx's
//! `access_log … buffer= flush=`). Nothing is dropped: a writer that finds [`CAP`] bytes
//! waiting writes them itself (back-pressure), and [`FlushOnDrop`] writes the rest when the
//! server stops.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the first line of a batch waits for others.
const GATHER: Duration = Duration::from_millis(10);
/// Bytes waiting beyond which a writer writes them itself.
const CAP: usize = 1 << 20;

/// A [`MakeWriter`] for tracing-subscriber: lines go to the shared buffer.
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Taken while `state` is held (so batches are written in the order they were taken),
    /// then written to without it.
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    closed: bool,
}

/// Stops the writing thread after it has written everything (when `valet serve` returns).
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedStderr {
    pub fn start() -> io::Result<(BatchedStderr, FlushOnDrop)> {
        Self::start_to(io::stderr())
    }

    /// Batches into `out` (tests use a buffer).
    fn start_to(out: impl Write + Send + 'static) -> io::Result<(BatchedStderr, FlushOnDrop)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            out: Mutex::new(Box::new(out)),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name("valet-log".into()).spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let mut st = shared.lock();
                    while st.buf.is_empty() && !st.closed {
                        st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    if !st.closed {
                        // Let the batch gather (under load a line rarely comes alone).
                        drop(st);
                        std::thread::sleep(GATHER);
                        st = shared.lock();
                    }
                    std::mem::swap(&mut batch, &mut st.buf);
                    let closed = st.closed;
                    let mut out = shared.out();
                    drop(st);
                    // Nowhere to report a failed write of the log itself.
                    let _ = out.write_all(&batch).and_then(|()| out.flush());
                    drop(out);
                    batch.clear();
                    if closed && shared.lock().buf.is_empty() {
                        return;
                    }
                }
            })?
        };
        Ok((BatchedStderr { shared: shared.clone() }, FlushOnDrop { shared, thread: Some(thread) }))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn out(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Write for BatchedStderr {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut st = self.shared.lock();
        if st.closed || st.buf.len() + line.len() > CAP {
            // Stopping, or the thread cannot keep up: write here, after the batch the thread
            // may be writing (its `out` lock), before anything newer (ours on `state`).
            let mut out = self.shared.out();
            out.write_all(&st.buf)?;
            st.buf.clear();
            out.write_all(line)?;
            return Ok(line.len());
        }
        let was_empty = st.buf.is_empty();
        st.buf.extend_from_slice(line);
        drop(st);
        if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = BatchedStderr;
    fn make_writer(&'a self) -> BatchedStderr {
        self.clone()
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(b);
            s.1 += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_in_few_writes_and_all_by_drop() {
        let sink = Sink::default();
        let (w, guard) = BatchedStderr::start_to(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        w.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4000);
        for t in 0..4 {
            let mine: Vec<usize> =
                lines.iter().filter_map(|l| l.strip_prefix(&format!("{t} "))).map(|n| n.parse().unwrap()).collect();
            assert_eq!(mine, (0..1000).collect::<Vec<_>>(), "thread {t}'s lines in order");
        }
        assert!(writes < 4000, "{writes} writes for 4000 lines");
    }

    #[test]
    fn a_line_written_alone_is_written_soon() {
        let sink = Sink::default();
        let (mut w, _guard) = BatchedStderr::start_to(sink.clone()).unwrap();
        w.write_all(b"one\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().0.is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.0.lock().unwrap().0, b"one\n");
    }
}
