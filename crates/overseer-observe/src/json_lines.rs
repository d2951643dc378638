//! A sink writing a system's events as JSON lines.

use std::io::{self, Write};
use std::time::SystemTime;

use overseer_agent::{System, SystemEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Writes each [`SystemEvent`] as one JSON object on its own line: the event's serde form,
/// tagged by `"source"`, preceded by a wall-clock `"timestamp"` (RFC 3339, UTC, microseconds)
/// when the sink knows the system's [`created_at`](System::created_at), as
/// [`spawn`](JsonLines::spawn)'s does. Durations are numbers of milliseconds in fields named
/// `*_ms` (`elapsed_ms`, `latency_ms`, `open_for_ms`, `after_ms`):
///
/// ```text
/// {"timestamp":"2026-11-22T09:14:03.000389Z","source":"lifecycle","id":1,"caused_by":null,"elapsed_ms":0.38894,"path":"root","kind":{"event":"started"}}
/// ```
///
/// If the sink falls behind the stream, it writes `{"source":"lagged","missed":N}` in place of
/// the `N` events it missed.
///
/// ```
/// use overseer_observe::JsonLines;
///
/// let mut sink = JsonLines::new(Vec::new());
/// sink.write_lagged(3)?;
/// assert_eq!(sink.lines(), 1);
/// assert_eq!(sink.into_inner(), b"{\"source\":\"lagged\",\"missed\":3}\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct JsonLines<W> {
    writer: W,
    lines: u64,
    origin: Option<SystemTime>,
}

impl<W: Write> JsonLines<W> {
    /// A sink writing to `writer`, without timestamps (see [`with_origin`](Self::with_origin)).
    pub fn new(writer: W) -> Self {
        Self {
            writer,
            lines: 0,
            origin: None,
        }
    }

    /// Stamps each line with the wall-clock time of its event: `origin` (the system's
    /// [`created_at`](System::created_at)) plus the event's
    /// [`elapsed`](SystemEvent::elapsed).
    pub fn with_origin(mut self, origin: SystemTime) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Writes `event` as one line.
    pub fn write_event(&mut self, event: &SystemEvent) -> io::Result<()> {
        let body = serde_json::to_vec(event).map_err(io::Error::other)?;
        let mut line = Vec::with_capacity(body.len() + 48);
        match (self.origin, body.strip_prefix(b"{")) {
            (Some(origin), Some(fields)) => {
                let at = humantime::format_rfc3339_micros(origin + event.elapsed());
                write!(line, r#"{{"timestamp":"{at}","#)?;
                line.extend_from_slice(fields);
            }
            _ => line.extend_from_slice(&body),
        }
        line.push(b'\n');
        self.writer.write_all(&line)?;
        self.lines += 1;
        Ok(())
    }

    /// Writes the line telling that `missed` events were lost.
    pub fn write_lagged(&mut self, missed: u64) -> io::Result<()> {
        writeln!(self.writer, r#"{{"source":"lagged","missed":{missed}}}"#)?;
        self.lines += 1;
        Ok(())
    }

    /// Flushes the writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write + Send + 'static> JsonLines<W> {
    /// Writes `system`'s events to `writer`, each stamped with its wall-clock time
    /// ([`System::timestamp`]), until the stream ends (after [`System::shutdown`]), then
    /// returns the number of lines written, or the first write error. It subscribes before
    /// returning: call it before [`System::start`] to see every event. The writer is flushed
    /// whenever the sink has caught up with the stream, and at the end; writes run on the
    /// runtime's thread, so give it a fast writer (a file, a `BufWriter`, stdout).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(system: &System, writer: W) -> JoinHandle<io::Result<u64>> {
        let mut events = system.subscribe();
        let created_at = system.created_at();
        tokio::spawn(async move {
            let mut sink = Self::new(writer).with_origin(created_at);
            loop {
                match events.recv().await {
                    Ok(event) => sink.write_event(&event)?,
                    Err(RecvError::Lagged(missed)) => sink.write_lagged(missed)?,
                    Err(RecvError::Closed) => break,
                }
                if events.is_empty() {
                    sink.flush()?;
                }
            }
            sink.flush()?;
            Ok(sink.lines())
        })
    }
}
