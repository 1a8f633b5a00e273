//! The server's agent client against a hostile agent: the sandbox's user can put a program
//! of their own behind the agent's socket (steal its listening socket from the agent they
//! own, say), so whatever it sends must be bounded, checked and answered within a timeout.
//! The fake agent here speaks the real wire protocol over an in-memory stream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure here is a failed test"
)]

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use model::{TerminalId, TerminalInfo, WorkspacePath};
use protocol::{Frame, HEADER_LEN, Message, Tag, VERSION, read_frame, write_frame};
use sandbox::{
    AgentConnection, Error, Transport,
    agent::{Failure, SandboxChange, TerminalEvent, TerminalSession},
};
use tokio::io::{AsyncRead, AsyncWriteExt, DuplexStream, ReadBuf, ReadHalf, WriteHalf};

/// The agent's end of the stream.
struct FakeAgent {
    reader: ReadHalf<DuplexStream>,
    writer: WriteHalf<DuplexStream>,
}

impl FakeAgent {
    async fn request(&mut self) -> Frame {
        read_frame(&mut self.reader).await.unwrap().unwrap()
    }

    async fn send(&mut self, id: u32, message: Message) {
        write_frame(&mut self.writer, &Frame::new(id, message))
            .await
            .unwrap();
    }

    /// A frame made by hand: `length` is what the header claims, `payload` what follows.
    async fn send_raw(&mut self, id: u32, tag: u16, length: usize, payload: &[u8]) {
        let mut bytes = (length as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag.to_be_bytes());
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(payload);
        self.writer.write_all(&bytes).await.unwrap();
    }
}

/// Counts the bytes the client reads from the agent.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicUsize>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read
            .fetch_add(buf.filled().len() - before, Ordering::Relaxed);
        polled
    }
}

/// A transport to a fake agent, the agent (once it has answered the handshake the client
/// makes), and how many bytes the client has read from it.
fn fake_agent() -> (
    Transport,
    tokio::task::JoinHandle<FakeAgent>,
    Arc<AtomicUsize>,
) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (our_reader, our_writer) = tokio::io::split(ours);
    let (reader, writer) = tokio::io::split(theirs);
    let read = Arc::new(AtomicUsize::new(0));
    let transport = Transport::new(
        Counting {
            inner: our_reader,
            read: read.clone(),
        },
        our_writer,
    );
    let mut agent = FakeAgent { reader, writer };
    // Answered from a task: the client's handshake waits for it.
    let handshaken = tokio::spawn(async move {
        let hello = agent.request().await;
        assert_eq!(hello.message, Message::Hello { version: VERSION });
        agent
            .send(hello.id, Message::Hello { version: VERSION })
            .await;
        agent
    });
    (transport, handshaken, read)
}

fn path(text: &str) -> WorkspacePath {
    WorkspacePath::parse(text).unwrap()
}

/// Has the fake agent send one frame of `tag` announcing `claimed` bytes (as the answer to
/// `id`), and checks that the session fails on it having read at most two chunks of it.
async fn refused_from_its_header(
    mut session: TerminalSession,
    mut agent: FakeAgent,
    read: Arc<AtomicUsize>,
    id: u32,
    tag: Tag,
    claimed: usize,
) {
    let flood = tokio::spawn(async move {
        agent
            .send_raw(id, tag as u16, claimed, &vec![b'{'; claimed - HEADER_LEN])
            .await;
    });
    let outcome = tokio::time::timeout(Duration::from_secs(30), session.events.next())
        .await
        .expect("the client gives up on the frame");
    assert!(
        matches!(outcome, Some(Err(Error::Protocol(_)))),
        "{:?}",
        outcome.map(|event| event.map_err(|error| error.to_string()))
    );
    let taken = read.load(Ordering::Relaxed);
    assert!(
        taken <= 2 * 64 * 1024,
        "the client read {taken} bytes of a frame it could refuse from its first ten"
    );
    flood.abort();
}

/// The attack: one 6 MB `TerminalList` frame raised the server's memory by ~170 MiB per
/// WebSocket. Now a frame over its kind's limit is refused from its header: the client
/// never reads (let alone decodes) more than a chunk of it.
#[tokio::test]
async fn a_frame_over_its_kinds_limit_is_refused_from_its_header() {
    let (transport, handshaken, read) = fake_agent();
    let mut session = TerminalSession::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    session.sender.list().await.unwrap();
    let list = agent.request().await;
    assert_eq!(list.message, Message::ListTerminals);
    refused_from_its_header(
        session,
        agent,
        read,
        list.id,
        Tag::TerminalList,
        6 * 1024 * 1024,
    )
    .await;
}

/// The language server's messages come from inside the sandbox too: one over
/// `MAX_LSP_MESSAGE` is refused from its header, like any frame over its kind's limit.
#[tokio::test]
async fn a_language_server_message_over_its_cap_is_refused_from_its_header() {
    let (transport, handshaken, read) = fake_agent();
    let session = TerminalSession::open(transport).await.unwrap();
    let agent = handshaken.await.unwrap();
    refused_from_its_header(
        session,
        agent,
        read,
        0,
        Tag::LspReceive,
        protocol::MAX_LSP_MESSAGE + 1024,
    )
    .await;
}

/// The installed packages come from inside the sandbox: an agent that packs more than it was
/// allowed, sends a piece past the end it announced, or lists too many packages is refused;
/// the archive the server keeps is never more than the quota it asked for.
#[tokio::test]
async fn packed_packages_over_what_was_asked_are_refused() {
    let (transport, handshaken, _) = fake_agent();
    let control = AgentConnection::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    let signature = "0".repeat(64);

    // Claims an archive larger than the quota asked for.
    let (answered, request) = tokio::join!(control.save_environment(1000, ""), async {
        let request = agent.request().await;
        assert_eq!(
            request.message,
            Message::SaveEnvironment {
                max_bytes: 1000,
                unless: String::new()
            }
        );
        agent
            .send(
                request.id,
                Message::EnvironmentSaved {
                    bytes: 5000,
                    signature: signature.clone(),
                    packages: vec![],
                },
            )
            .await;
    });
    let () = request;
    assert!(matches!(answered, Err(Error::Protocol(_))), "{answered:?}");

    // Announces 10 bytes and sends 4 MiB: only the 10 are kept.
    let (answered, ()) = tokio::join!(control.save_environment(1000, ""), async {
        let request = agent.request().await;
        agent
            .send(
                request.id,
                Message::EnvironmentSaved {
                    bytes: 10,
                    signature: signature.clone(),
                    packages: vec!["six==1.17.0".into()],
                },
            )
            .await;
        let read = agent.request().await;
        assert_eq!(read.message, Message::ReadEnvironment { offset: 0 });
        agent
            .send(
                read.id,
                Message::EnvironmentData {
                    data: vec![7; protocol::MAX_ENVIRONMENT_CHUNK],
                },
            )
            .await;
    });
    match answered.unwrap() {
        sandbox::agent::EnvironmentSave::Saved { archive, .. } => assert_eq!(archive, [7; 10]),
        other => panic!("{other:?}"),
    }

    // Too many packages, or a signature that is not one: refused after decoding.
    for (packages, signature) in [
        (
            vec!["a==1".to_owned(); protocol::MAX_PACKAGES + 1],
            "0".repeat(64),
        ),
        (vec![], "not hex".to_owned()),
    ] {
        let (answered, ()) = tokio::join!(control.save_environment(1000, ""), async {
            let request = agent.request().await;
            agent
                .send(
                    request.id,
                    Message::EnvironmentSaved {
                        bytes: 0,
                        signature,
                        packages,
                    },
                )
                .await;
        });
        assert!(answered.is_err(), "{answered:?}");
        if control.is_closed() {
            break;
        }
    }
}

/// Figures come from inside the sandbox too: a `Plot` over `MAX_PLOT` is refused from its
/// header, before the server buffers it for the browser.
#[tokio::test]
async fn a_figure_over_its_cap_is_refused_from_its_header() {
    let (transport, handshaken, read) = fake_agent();
    let session = TerminalSession::open(transport).await.unwrap();
    let agent = handshaken.await.unwrap();
    refused_from_its_header(
        session,
        agent,
        read,
        0,
        Tag::Plot,
        protocol::MAX_PLOT + 1024,
    )
    .await;
}

/// Within the size limit, what a list or string may hold is checked after decoding.
#[tokio::test]
async fn lists_and_strings_over_their_caps_are_refused() {
    let (transport, handshaken, _) = fake_agent();
    let mut session = TerminalSession::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    let info = |n: u32, command: Option<String>| TerminalInfo {
        terminal: TerminalId(n),
        command,
        exited: None,
    };
    // More terminals than an agent may have, then a command longer than a run may carry.
    let lists = [
        (0..=protocol::MAX_TERMINALS as u32)
            .map(|n| info(n, None))
            .collect::<Vec<_>>(),
        vec![info(1, Some("x".repeat(model::ws::MAX_COMMAND + 1)))],
    ];
    for terminals in lists {
        session.sender.list().await.unwrap();
        let request = agent.request().await;
        agent
            .send(request.id, Message::TerminalList { terminals })
            .await;
        let event = session.events.next().await.unwrap().unwrap();
        assert!(
            matches!(
                event,
                TerminalEvent::Failed {
                    failure: Failure::Protocol,
                    ..
                }
            ),
            "{event:?}"
        );
    }
    // A well-formed list still goes through.
    session.sender.list().await.unwrap();
    let request = agent.request().await;
    agent
        .send(
            request.id,
            Message::TerminalList {
                terminals: vec![info(1, Some("python3 main.py".into()))],
            },
        )
        .await;
    assert_eq!(
        session.events.next().await.unwrap().unwrap(),
        TerminalEvent::Terminals(vec![info(1, Some("python3 main.py".into()))])
    );
}

/// The attack: `kill -STOP` on one's own agent made `/api/files/write` hang for ever and pin
/// a file descriptor per save. Now every call fails within the timeout, the connection is
/// closed as wedged, and later calls fail at once.
#[tokio::test(start_paused = true)]
async fn an_agent_that_stops_answering_fails_every_call_within_the_timeout() {
    let (transport, handshaken, _) = fake_agent();
    let control = AgentConnection::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    let started = tokio::time::Instant::now();
    let main = path("main.py");
    let write = control.write_file(&main, b"print(1)\n");
    let (result, request) = tokio::join!(write, agent.request());
    assert!(matches!(request.message, Message::WriteFile { .. }));
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    // On the paused clock: exactly the request timeout, not a moment of real time.
    assert_eq!(started.elapsed(), sandbox::agent::REQUEST_TIMEOUT);
    assert!(control.is_closed());
    assert!(matches!(control.ping().await, Err(Error::Closed)));
}

#[tokio::test(start_paused = true)]
async fn a_terminal_request_left_unanswered_ends_the_session() {
    let (transport, handshaken, _) = fake_agent();
    let mut session = TerminalSession::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    session.sender.attach(TerminalId(1)).await.unwrap();
    agent.request().await;
    let outcome = session.events.next().await;
    assert!(
        matches!(outcome, Some(Err(Error::Timeout(_)))),
        "{outcome:?}"
    );
}

/// Requests are multiplexed on the control connection: answers in any order reach their
/// callers.
#[tokio::test]
async fn answers_reach_their_callers_in_any_order() {
    let (transport, handshaken, _) = fake_agent();
    let control = AgentConnection::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    let answer = async {
        let first = agent.request().await;
        let second = agent.request().await;
        // The second first.
        for request in [second, first] {
            let Message::ReadFile { path } = request.message else {
                panic!("{request:?}");
            };
            let data = path.as_str().as_bytes().to_vec();
            agent
                .send(request.id, Message::FileContent { path, data })
                .await;
        }
    };
    let (a_txt, b_txt) = (path("a.txt"), path("b.txt"));
    let (a, b, ()) = tokio::join!(control.read_file(&a_txt), control.read_file(&b_txt), answer);
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        (b"a.txt".to_vec(), b"b.txt".to_vec())
    );
    // An answer naming another file than asked is refused.
    let answer = async {
        let request = agent.request().await;
        agent
            .send(
                request.id,
                Message::FileContent {
                    path: path("other.txt"),
                    data: vec![],
                },
            )
            .await;
    };
    let (read, ()) = tokio::join!(control.read_file(&a_txt), answer);
    assert!(matches!(read, Err(Error::Protocol(_))), "{read:?}");
}

/// A path that would leave the workspace does not decode; the event is dropped, and the
/// watch goes on. A lag the agent reports reaches the consumer, in order.
#[tokio::test]
async fn hostile_and_lagged_changes_are_dropped_or_reported_and_the_watch_goes_on() {
    let (transport, handshaken, _) = fake_agent();
    let control = AgentConnection::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    let answer = async {
        let watch = agent.request().await;
        assert_eq!(watch.message, Message::Watch);
        agent.send(watch.id, Message::Ok).await;
    };
    let (changes, ()) = tokio::join!(control.watch(), answer);
    let mut changes = changes.unwrap();
    let payload = postcard_path_event("../../etc/passwd");
    agent
        .send_raw(
            0,
            Tag::FileRemoved as u16,
            HEADER_LEN + payload.len(),
            &payload,
        )
        .await;
    agent
        .send(
            0,
            Message::FileRemoved {
                path: path("gone.txt"),
            },
        )
        .await;
    agent.send(0, Message::WatchLagged { missed: 12 }).await;
    assert_eq!(
        changes.next().await,
        Some(SandboxChange::Removed {
            path: path("gone.txt")
        })
    );
    assert_eq!(changes.next().await, Some(SandboxChange::Lagged));
    // Changes after the consumer has heard of the lag come through again.
    agent
        .send(
            0,
            Message::FileRemoved {
                path: path("later.txt"),
            },
        )
        .await;
    assert_eq!(
        changes.next().await,
        Some(SandboxChange::Removed {
            path: path("later.txt")
        })
    );
    // The connection still answers.
    let answer = async {
        let ping = agent.request().await;
        agent.send(ping.id, Message::Pong).await;
    };
    let (pong, ()) = tokio::join!(control.ping(), answer);
    pong.unwrap();
}

/// A `FileRemoved` payload with `path` as raw text (no validation).
fn postcard_path_event(path: &str) -> Vec<u8> {
    let mut payload = vec![path.len() as u8];
    payload.extend_from_slice(path.as_bytes());
    payload
}

/// A burst of changes beyond what the server queues for a consumer busy elsewhere: the
/// consumer gets what was queued, then one `Lagged` (to catch up from a snapshot), then
/// the changes after it; memory stays bounded meanwhile.
#[tokio::test]
async fn a_burst_beyond_the_change_queue_is_reported_as_one_lag() {
    let (transport, handshaken, _) = fake_agent();
    let control = AgentConnection::open(transport).await.unwrap();
    let mut agent = handshaken.await.unwrap();
    let answer = async {
        let watch = agent.request().await;
        agent.send(watch.id, Message::Ok).await;
    };
    let (changes, ()) = tokio::join!(control.watch(), answer);
    let mut changes = changes.unwrap();
    for n in 0..6000 {
        agent
            .send(
                0,
                Message::FileRemoved {
                    path: path(&format!("f{n}")),
                },
            )
            .await;
    }
    // Once the connection has answered this, the burst has been read.
    let answer = async {
        let ping = agent.request().await;
        agent.send(ping.id, Message::Pong).await;
    };
    let (pong, ()) = tokio::join!(control.ping(), answer);
    pong.unwrap();
    let mut removed = 0;
    loop {
        match changes.next().await.unwrap() {
            SandboxChange::Removed { .. } => removed += 1,
            SandboxChange::Lagged => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        removed > 0 && removed < 6000,
        "{removed} queued before the lag"
    );
    agent
        .send(
            0,
            Message::FileRemoved {
                path: path("after.txt"),
            },
        )
        .await;
    assert_eq!(
        changes.next().await,
        Some(SandboxChange::Removed {
            path: path("after.txt")
        })
    );
}
