//! A browser that stops reading a flood of terminal output: dropped, and memory stays
//! bounded. In its own test binary so that the process's memory is this test's alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::time::Duration;

use common::{spawn_app_configured, ws_client::*};
use model::ws::{ClientMessage, ServerMessage};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_browser_that_stops_reading_a_flood_is_dropped_and_memory_stays_bounded() {
    let app = spawn_app_configured(|config| {
        config.ws_send_timeout = Duration::from_secs(1);
        config.ws_ping_interval = Duration::from_secs(1);
    })
    .await;
    let (cookie, ws) = user_with_workspace(&app, "ada").await;
    let mut socket = connect(&app, &cookie, &ws).await;
    let terminal = ready_with_terminal(&mut socket).await;
    type_in(&mut socket, terminal, "echo go-$((1+1))\r").await;
    output_until(&mut socket, terminal, "go-2").await;
    let before = rss_kib();

    // Flood, and stop reading: nothing on the server side may queue it all.
    type_in(&mut socket, terminal, "yes flood-flood-flood-flood\r").await;
    let mut dropped = false;
    for _ in 0..600 {
        if metric(&app, "codepod_ws_slow_client_drops_total").await >= 1.0 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "a socket that stopped reading was never dropped");
    // Whatever was in flight is bounded by the socket buffers; then the close (or a reset).
    let mut received = 0usize;
    loop {
        match receive(&mut socket).await {
            Received::Data(_, data) => received += data.len(),
            Received::Closed(code) => {
                assert!(matches!(code, None | Some(4001)), "{code:?}");
                break;
            }
            Received::Control(_) => {}
        }
    }
    let grown = rss_kib().saturating_sub(before);
    println!("grew by {grown} KiB; {received} bytes arrived after the stall");
    assert!(
        grown < 32 * 1024,
        "server + test process grew by {grown} KiB under the flood"
    );
    assert!(
        received < 64 * 1024 * 1024,
        "{received} bytes were queued for a stalled client"
    );

    // The terminal survived; a new socket reattaches, interrupts the flood and goes on.
    let mut again = connect(&app, &cookie, &ws).await;
    control_until(&mut again, |m| matches!(m, ServerMessage::Terminals { .. })).await;
    send(&mut again, ClientMessage::Attach { terminal }).await;
    type_in(&mut again, terminal, "\x03").await;
    type_in(&mut again, terminal, "echo calm-$((3*3))\r").await;
    let mut tail: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flood goes on two minutes after ^C"
        );
        match receive(&mut again).await {
            Received::Data(t, data) if t == terminal => {
                tail.extend_from_slice(&data);
                if tail.windows(6).any(|w| w == b"calm-9") {
                    break;
                }
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 64);
                }
            }
            // Detached while catching up with the flood: attach again, as the browser does.
            Received::Control(ServerMessage::Lagged { .. }) => {
                send(&mut again, ClientMessage::Attach { terminal }).await;
            }
            Received::Closed(code) => panic!("closed {code:?}"),
            _ => {}
        }
    }
}
