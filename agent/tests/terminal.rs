//! The real agent binary on a real PTY: open a shell, type, read, detach, reattach and get
//! the scrollback, resize, and protocol errors that do not kill the connection.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use std::time::Duration;

use common::{Client, start_agent, start_agent_as_first_process, start_agent_ignoring};

use model::{TerminalId, TerminalInfo};
use protocol::{ErrorCode, Frame, Message, VERSION, read_frame, write_frame};
use tokio::net::UnixStream;

#[tokio::test]
async fn a_shell_runs_commands_and_its_output_survives_a_reconnect() {
    let agent = start_agent().await;
    let mut first = Client::connect(&agent).await;
    let terminal = first.open_attached().await;
    first.keys(terminal, b"echo $((6*7))\r").await;
    first.output_until(terminal, "42\r\n").await;
    drop(first);

    // A new connection (a reload, a restarted server) sees the scrollback, then live output.
    let mut second = Client::connect(&agent).await;
    second.attach(terminal).await;
    let replay = second.output_until(terminal, "42").await;
    assert!(replay.contains("echo $((6*7))"), "{replay}");
    second.keys(terminal, b"echo still-$((40+2))\r").await;
    second.output_until(terminal, "still-42").await;
}

#[tokio::test]
async fn two_clients_attached_to_one_terminal_both_see_its_output() {
    let agent = start_agent().await;
    let mut a = Client::connect(&agent).await;
    let mut b = Client::connect(&agent).await;
    let terminal = a.open(80, 24).await;
    a.attach(terminal).await;
    b.attach(terminal).await;
    a.keys(terminal, b"echo shared-$((1+1))\r").await;
    a.output_until(terminal, "shared-2").await;
    b.output_until(terminal, "shared-2").await;
}

#[tokio::test]
async fn a_resize_reaches_the_shell() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    let terminal = client.open_attached().await;
    assert_eq!(
        client
            .request(Message::Resize {
                terminal,
                cols: 132,
                rows: 43
            })
            .await,
        Message::Ok
    );
    client.keys(terminal, b"stty size\r").await;
    client.output_until(terminal, "43 132").await;
}

#[tokio::test]
async fn terminals_are_independent_and_close_with_an_exit_event() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    let one = client.open(80, 24).await;
    let two = client.open(80, 24).await;
    assert_ne!(one, two);
    assert_eq!(
        client.request(Message::Attach { terminal: two }).await,
        Message::Ok
    );
    client.keys(two, b"exit 3\r").await;
    loop {
        if let Message::TerminalExited { terminal, status } = client.next().await.message {
            assert_eq!((terminal, status), (two, 3));
            break;
        }
    }
    // Both are listed (a reconnecting client resumes from this), the ended one with its status.
    assert_eq!(
        client.request(Message::ListTerminals).await,
        Message::TerminalList {
            terminals: vec![
                TerminalInfo {
                    terminal: one,
                    command: None,
                    exited: None
                },
                TerminalInfo {
                    terminal: two,
                    command: None,
                    exited: Some(3)
                },
            ]
        }
    );
    assert_eq!(
        client
            .request(Message::CloseTerminal { terminal: one })
            .await,
        Message::Ok
    );
    match client.request(Message::ListTerminals).await {
        Message::TerminalList { terminals } => {
            assert_eq!(
                terminals.iter().map(|t| t.terminal).collect::<Vec<_>>(),
                [two]
            );
        }
        other => panic!("{other:?}"),
    }
    match client.request(Message::Attach { terminal: one }).await {
        Message::Error { code, .. } => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn protocol_errors_get_an_error_reply_and_the_connection_goes_on() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    // A frame with a tag nobody knows.
    use tokio::io::AsyncWriteExt;
    client
        .stream
        .write_all(&[0, 0, 0, 6, 0x7f, 0x7f, 0, 0, 0, 77])
        .await
        .unwrap();
    let frame = client.next().await;
    assert_eq!(frame.id, 77);
    assert!(
        matches!(
            frame.message,
            Message::Error {
                code: ErrorCode::UnknownTag,
                ..
            }
        ),
        "{frame:?}"
    );
    // An event sent as a request.
    match client
        .request(Message::Output {
            terminal: TerminalId(1),
            data: vec![],
        })
        .await
    {
        Message::Error { code, .. } => assert_eq!(code, ErrorCode::Unsupported),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.request(Message::Ping).await, Message::Pong);
    // A length over the maximum closes the connection, but not the agent.
    client
        .stream
        .write_all(&u32::MAX.to_be_bytes())
        .await
        .unwrap();
    // Drains the error frame, then sees the close.
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_secs(5), read_frame(&mut client.stream))
            .await
            .unwrap()
    {}
    let mut again = Client::connect(&agent).await;
    assert_eq!(again.request(Message::Ping).await, Message::Pong);
}

#[tokio::test]
async fn a_client_with_another_version_is_refused() {
    let agent = start_agent().await;
    let mut stream = UnixStream::connect(&agent.socket).await.unwrap();
    write_frame(
        &mut stream,
        &Frame::new(
            1,
            Message::Hello {
                version: VERSION + 1,
            },
        ),
    )
    .await
    .unwrap();
    let frame = read_frame(&mut stream).await.unwrap().unwrap();
    assert!(matches!(
        frame.message,
        Message::Error {
            code: ErrorCode::UnsupportedVersion,
            ..
        }
    ));
    assert!(
        read_frame(&mut stream).await.unwrap().is_none(),
        "then the agent closes"
    );
}

#[tokio::test]
async fn a_run_reports_its_exit_code_wall_time_and_peak_memory() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    let command = "python3 -c 'import sys; b = bytearray(64 * 1024 * 1024); print(\"ran\", len(b) >> 20); sys.exit(3)'";
    let terminal = client.run_attached(command).await;
    let mut output = String::new();
    let finished = loop {
        match client.next().await.message {
            Message::Output { data, .. } => output.push_str(&String::from_utf8_lossy(&data)),
            Message::RunFinished {
                terminal: t,
                exit_code,
                wall_ms,
                peak_rss_kib,
            } => {
                assert_eq!(t, terminal);
                break (exit_code, wall_ms, peak_rss_kib);
            }
            _ => {}
        }
    };
    assert!(output.contains("ran 64"), "{output}");
    assert_eq!(finished.0, 3);
    assert!(finished.2 >= 64 * 1024, "peak {} KiB", finished.2);
    assert!(finished.1 < 60_000);
    loop {
        if let Message::TerminalExited {
            terminal: t,
            status,
        } = client.next().await.message
        {
            assert_eq!((t, status), (terminal, 3));
            break;
        }
    }
    client.run_attached("true").await;
    loop {
        if let Message::RunFinished { exit_code, .. } = client.next().await.message {
            assert_eq!(exit_code, 0);
            break;
        }
    }
}

/// `codepod-agent attach` relays its stdin and stdout to the agent (how the server reaches
/// it on Kubernetes): with pipes, as a container runtime gives it, and with anything else
/// (here a socket), through the fallback.
#[tokio::test]
async fn attach_relays_stdio_to_the_agent_over_pipes_and_over_other_streams() {
    let agent = start_agent().await;
    // Pipes.
    let mut relay = tokio::process::Command::new(env!("CARGO_BIN_EXE_codepod-agent"))
        .arg("attach")
        .arg(&agent.socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut to_agent = relay.stdin.take().unwrap();
    let mut from_agent = relay.stdout.take().unwrap();
    write_frame(
        &mut to_agent,
        &Frame::new(1, Message::Hello { version: VERSION }),
    )
    .await
    .unwrap();
    let hello = read_frame(&mut from_agent).await.unwrap().unwrap();
    assert_eq!(hello.message, Message::Hello { version: VERSION });
    write_frame(&mut to_agent, &Frame::new(2, Message::ListTerminals))
        .await
        .unwrap();
    let list = read_frame(&mut from_agent).await.unwrap().unwrap();
    assert_eq!(list.message, Message::TerminalList { terminals: vec![] });
    // Closing stdin ends the relay.
    drop(to_agent);
    let status = tokio::time::timeout(Duration::from_secs(10), relay.wait())
        .await
        .expect("the relay ends with its input")
        .unwrap();
    assert!(status.success());

    // A socket instead of pipes.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let theirs_out = theirs.try_clone().unwrap();
    let mut relay = tokio::process::Command::new(env!("CARGO_BIN_EXE_codepod-agent"))
        .arg("attach")
        .arg(&agent.socket)
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs,
        )))
        .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs_out,
        )))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    ours.set_nonblocking(true).unwrap();
    let mut ours = UnixStream::from_std(ours).unwrap();
    write_frame(
        &mut ours,
        &Frame::new(1, Message::Hello { version: VERSION }),
    )
    .await
    .unwrap();
    let hello = read_frame(&mut ours).await.unwrap().unwrap();
    assert_eq!(hello.message, Message::Hello { version: VERSION });
    drop(ours);
    let _ = tokio::time::timeout(Duration::from_secs(10), relay.wait()).await;

    // The pod's readiness probe: the agent answers, a missing one does not.
    let probe = |socket: std::path::PathBuf| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_codepod-agent"))
            .arg("probe")
            .arg(socket)
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .unwrap()
            .success()
    };
    assert!(probe(agent.socket.clone()).await);
    assert!(!probe(agent.dir.path().join("nothing.sock")).await);

    // An agent that is not there: a clear failure, not a hang.
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_codepod-agent"))
        .arg("attach")
        .arg(agent.dir.path().join("nothing.sock"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(!status.success());
}

/// Whoever starts the server may leave signals ignored (`nohup codepod &`, `&` in a
/// script), and `exec` passes that on to the agent. Its shells' jobs must still get them
/// at their defaults: with SIGINT ignored, ^C stopped nothing in any terminal.
#[tokio::test]
async fn shells_get_signals_at_their_defaults_whatever_the_agent_inherited() {
    let agent = start_agent_ignoring("HUP INT QUIT TSTP TTIN TTOU USR1 USR2 ALRM").await;
    let mut client = Client::connect(&agent).await;
    let terminal = client.open_attached().await;
    // A job's ignored signals (`grep`'s, a job of its own), masked to those the agent was
    // started with.
    client.keys(terminal, b"grep ^SigIgn /proc/self/status > ign; echo ignored=$(( 0x$(cut -f2 ign) & 0x382A07 ))\r").await;
    client.output_until(terminal, "ignored=0\r\n").await;

    // And ^C stops a job (if it did not, the output would stop and `next` time out).
    client.keys(terminal, b"sleep 600\r").await;
    client.output_until(terminal, "sleep 600\r\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (Apart: the interrupt flushes what was typed with it.)
    for keys in ["\x03", "echo after-$((2+3))\r"] {
        client.keys(terminal, keys.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.output_until(terminal, "after-5").await;
}

/// SIGTERM (a pod being deleted, where the agent is the container's first process and
/// has no default action) stops the agent at once.
#[tokio::test]
async fn the_agent_stops_on_sigterm() {
    let mut agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    client.open(80, 24).await;
    let status = agent.signal_and_wait("TERM").await;
    assert!(status.success(), "{status}");
}

/// A client that stops reading a flood for a while pauses it — the program's writes block,
/// as on a terminal — and then gets all of it, in order: no output is dropped, and the
/// client is not detached (without flow control it fell 8 MiB behind and was).
#[tokio::test]
async fn a_client_that_falls_behind_pauses_the_output_and_then_gets_all_of_it() {
    const LAST: u32 = 2_000_000;
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    let terminal = client.open_attached().await;
    client
        .keys(terminal, format!("seq 1 {LAST}; echo EN''D\r"))
        .await;
    // ~15 MB of output; nothing read for three seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut output = Vec::new();
    loop {
        match client.next().await.message {
            Message::Output { data, .. } => output.extend_from_slice(&data),
            Message::Error { code, message } => panic!("{code:?}: {message}"),
            _ => {}
        }
        let tail = &output[output.len().saturating_sub(64 * 1024)..];
        if tail.windows(5).any(|window| window == b"END\r\n") {
            break;
        }
    }
    let text = String::from_utf8(output).unwrap();
    let numbers: Vec<u32> = text
        .split("\r\n")
        // (The first follows the shell's "bracketed paste off" and a carriage return.)
        .filter_map(|line| line.rsplit('\r').next()?.parse().ok())
        .collect();
    assert_eq!(numbers.len(), LAST as usize);
    assert!(numbers.iter().zip(1..).all(|(&n, expected)| n == expected));
}

/// On Kubernetes the agent is its container's first process, which inherits every orphan:
/// one that ends must be waited for, or it stays a zombie until the pod ends. And the
/// kubelet's SIGTERM (which a first process gets only if it handles or blocks it) stops it.
#[tokio::test]
async fn as_the_first_process_the_agent_reaps_orphans_and_stops_on_sigterm() {
    let mut agent = start_agent_as_first_process().await;
    let mut client = Client::connect(&agent).await;
    let terminal = client.open_attached().await;
    // `sleep`'s parent (the subshell) exits at once: it ends as the first process's child.
    client.keys(terminal, b"(sleep 0.1 &); sleep 1; echo zombies=$(awk '$3 == \"Z\"' /proc/[0-9]*/stat | wc -l)\r").await;
    client.output_until(terminal, "zombies=0\r\n").await;

    let status = agent.signal_and_wait("TERM").await;
    assert!(status.success(), "{status}");
}

/// ^C in a run's terminal stops the command, and the run still reports how it ended
/// (130: killed by SIGINT), as a shell would show it.
#[tokio::test]
async fn an_interrupted_run_still_reports_its_end() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    let terminal = client.run_attached("echo started; sleep 600").await;
    client.output_until(terminal, "started").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.keys(terminal, b"\x03").await;
    let (mut finished, mut exited) = (None, None);
    while exited.is_none() {
        match client.next().await.message {
            Message::RunFinished { exit_code, .. } => finished = Some(exit_code),
            Message::TerminalExited { status, .. } => exited = Some(status),
            _ => {}
        }
    }
    assert_eq!((finished, exited), (Some(130), Some(130)));
}
