//! A publisher that misbehaves below the level of events: it hangs mid-answer, trickles one
//! byte a second, cuts its answer short, sends garbage, speaks something other than HTTP, or
//! never stops sending. The subscriber cuts each off, counts it by kind, keeps serving its own
//! clients, and takes the good page when the publisher behaves again.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake::{self, event, signed};
use common::*;
use jol::event::schema::EventType;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// What the fake publisher does with one feed request.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Headers and the start of the body, then silence.
    Hang,
    /// A correct answer, one byte a second.
    Trickle,
    /// Content-Length 5000, then 100 bytes and the connection closed.
    Truncate,
    /// A 200 whose body is not JSON.
    Garbage,
    /// Bytes that are not an HTTP response at all.
    NotHttp,
    /// A chunked body that never ends.
    Endless,
}

const FAULTS: [Fault; 6] = [
    Fault::Hang,
    Fault::Trickle,
    Fault::Truncate,
    Fault::Garbage,
    Fault::NotHttp,
    Fault::Endless,
];

async fn answer<S: AsyncWrite + Unpin>(
    s: &mut S,
    status: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await
}

async fn misbehave<S: AsyncWrite + Unpin>(s: &mut S, fault: Fault) -> std::io::Result<()> {
    let page = br#"{"events": [], "next": 0, "head": 0}"#;
    match fault {
        Fault::Hang => {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"events\": [")
                .await?;
            s.flush().await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Fault::Trickle => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                page.len()
            );
            for b in head.as_bytes().iter().chain(page) {
                s.write_all(&[*b]).await?;
                s.flush().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Fault::Truncate => {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n")
                .await?;
            s.write_all(&[b' '; 100]).await?;
            s.shutdown().await?;
        }
        Fault::Garbage => {
            let noise: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
            answer(s, "200 OK", &noise).await?;
        }
        Fault::NotHttp => {
            s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02\xff\r\n\r\n")
                .await?;
            s.flush().await?;
        }
        Fault::Endless => {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = vec![b' '; 1 << 20];
            loop {
                s.write_all(b"100000\r\n").await?;
                s.write_all(&chunk).await?;
                s.write_all(b"\r\n").await?;
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_hangs_trickles_truncates_or_babbles_is_cut_off_and_sync_recovers() {
    let fed = Federation::build_with(
        "min_backoff_ms = 20\nmax_backoff_ms = 100\nwait_secs = 1\nanswer_timeout_ms = 1000",
    );
    let (key, kid) = fed.migration_signer();
    let good: Vec<_> = (1..=2)
        .map(|seq| {
            let pin = format!("2150319901234{seq}");
            event(
                EventType::ReturneeRecord,
                seq,
                returnee(&pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
            )
        })
        .collect();
    let page = json!({"head": 2, "next": 2, "events": [
        {"sequence": 1, "jws": signed(&good[0], &key, &kid)},
        {"sequence": 2, "jws": signed(&good[1], &key, &kid)},
    ]})
    .to_string();
    let manifest = std::fs::read(fed.path("manifest.jws")).unwrap();

    // The fake publisher: the n-th feed request meets FAULTS[n]; after them it behaves.
    let acceptor = fake::acceptor(&fed, "migration");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", fed.peer["migration"]))
        .await
        .unwrap();
    let feeds = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn({
        let feeds = feeds.clone();
        async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, feeds) = (acceptor.clone(), feeds.clone());
                let (manifest, page) = (manifest.clone(), page.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut s = BufReader::new(tls);
                    loop {
                        let mut request_line = String::new();
                        if s.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut line = String::new();
                        while s.read_line(&mut line).await.unwrap_or(0) > 2 {
                            line.clear();
                        }
                        let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                        let s = s.get_mut();
                        let r = if path.starts_with("/peer/v1/manifest") {
                            answer(s, "200 OK", &manifest).await
                        } else if !path.starts_with("/peer/v1/feed") {
                            answer(s, "404 Not Found", br#"{"type": "not-found"}"#).await
                        } else {
                            match FAULTS.get(feeds.fetch_add(1, Ordering::SeqCst)) {
                                Some(fault) => {
                                    let _ = misbehave(s, *fault).await;
                                    return;
                                }
                                None if path.contains("after=0&") => {
                                    answer(s, "200 OK", page.as_bytes()).await
                                }
                                None => {
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                    answer(s, "200 OK", br#"{"events": [], "next": 2, "head": 2}"#)
                                        .await
                                }
                            }
                        };
                        if r.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });

    let emp = start_async(fed.config("employment")).await;
    let addr = emp.addr;
    let (slowest, events, metrics, quarantined) = tokio::task::spawn_blocking(move || {
        // While the publisher misbehaves, employment answers its own clients at once.
        let mut slowest = Duration::ZERO;
        let arrived = eventually(Duration::from_secs(60), || {
            let t = Instant::now();
            assert_eq!(get(addr, "/healthz").status, 200);
            slowest = slowest.max(t.elapsed());
            events_from(addr, MIGRATION).len() == 2
        });
        assert!(arrived.is_some(), "the good page never arrived");
        (
            slowest,
            events_from(addr, MIGRATION),
            String::from_utf8(get(addr, "/metrics").body).unwrap(),
            get(addr, "/api/v1/quarantine").json()["total"].as_u64(),
        )
    })
    .await
    .unwrap();
    server.abort();
    assert!(feeds.load(Ordering::SeqCst) > FAULTS.len());
    let failures = |kind: &str| -> u64 {
        let prefix = format!("jol_sync_failures_total{{from=\"{MIGRATION}\",kind=\"{kind}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    };
    // Hang and trickle: cut off at the deadline; truncated and not-HTTP: protocol errors;
    // garbage: a page that does not decode; endless: over the size limit.
    assert_eq!(failures("timeout"), 2, "{metrics}");
    assert_eq!(failures("http"), 2, "{metrics}");
    assert_eq!(failures("decode"), 1, "{metrics}");
    assert_eq!(failures("too-large"), 1, "{metrics}");
    assert_eq!(
        quarantined,
        Some(0),
        "nothing the publisher said was an event"
    );
    let ids: Vec<_> = events.iter().map(|e| e["event"]["id"].clone()).collect();
    assert_eq!(
        ids,
        [json!(good[0].id.to_string()), json!(good[1].id.to_string())]
    );
    // Not a speed goal: a local API that waited on the sync task would take the whole
    // two-second answer deadline of the hung request.
    assert!(
        slowest < Duration::from_secs(2),
        "the local API stalled for {slowest:?} while the peer misbehaved"
    );
    drop(emp);
}
