//! A real HTTP receiver for the gateway's Subscription notifications (rest-hook POSTs), shared by
//! the suites that subscribe (subscriptions, pages_notify).

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One POST the receiver got.
#[derive(Debug)]
pub struct Hook {
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Hook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn bundle(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A plain HTTP/1.1 server on a free local port that answers every request 200 and hands it
/// over; its base URL.
pub fn receiver() -> (String, mpsc::Receiver<Hook>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let rx = serve(
        l,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    );
    (url, rx)
}

/// Serves `l`, answering every request `answer` and handing the request over.
pub fn serve(l: std::net::TcpListener, answer: Vec<u8>) -> mpsc::Receiver<Hook> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16 * 1024];
            let head_end = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i);
                }
            };
            let Some(i) = head_end else { continue };
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let mut lines = head.split("\r\n");
            let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = buf[i + 4..].to_vec();
            while body.len() < len {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            let _ = s.write_all(&answer);
            if tx
                .send(Hook {
                    path,
                    headers,
                    body,
                })
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// The next POST to `path` within `wait` (others are set aside in `other`).
pub fn next_hook(
    rx: &mpsc::Receiver<Hook>,
    path: &str,
    wait: Duration,
    other: &mut Vec<Hook>,
) -> Option<Hook> {
    if let Some(i) = other.iter().position(|h| h.path == path) {
        return Some(other.remove(i));
    }
    let deadline = Instant::now() + wait;
    tokio::task::block_in_place(|| loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(h) if h.path == path => return Some(h),
            Ok(h) => other.push(h),
            Err(_) => return None,
        }
    })
}
