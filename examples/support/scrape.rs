//! Scraping a Prometheus endpoint without a client crate, shared by the `metrics_prometheus`
//! example and the test that checks its figures (`tests/metrics_scrape.rs`): one HTTP/1.0 GET
//! of `/metrics` on a raw TCP stream, retried while the exporter's listener comes up.
#![allow(unreachable_pub)] // `pub` for the files that include it: nothing here is API

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback port free right now, for an exporter to bind.
pub fn free_loopback_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// One HTTP/1.0 GET of `/metrics` at `address`: the body of a 200 answer.
pub fn scrape(address: SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200") => {
            Ok(body.to_string())
        }
        _ => Err(io::Error::other(format!("unexpected answer: {response}"))),
    }
}

/// [`scrape`], tried again until the endpoint answers (the exporter's listener may still be
/// binding) or `patience` has passed; then the last error.
pub fn scrape_once_up(address: SocketAddr, patience: Duration) -> io::Result<String> {
    let deadline = Instant::now() + patience;
    loop {
        match scrape(address) {
            Ok(text) => return Ok(text),
            Err(_) if Instant::now() < deadline => std::thread::yield_now(),
            Err(error) => return Err(error),
        }
    }
}
