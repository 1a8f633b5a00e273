//! The terminal over WebSocket, side by side with JupyterLab's terminal (jupyter_server +
//! terminado), driven by this one client:
//!
//! - keystroke → echo round trip with 1 typist, with 50 concurrent typists, and the 50
//!   typists' latency while one more session floods output (`yes`);
//! - output throughput: `cat` of a 50 MB file to the client;
//! - terminal creation → first output (the prompt).
//!
//!     bench/run.sh terminal     (starts both servers, then runs this)
//!
//! Arguments: `--codepod http://HOST:PORT --jupyter http://HOST:PORT --token TOKEN`.
//! Prints p50/p99 for each and the Codepod/peer ratios; asserts nothing.
//!
//! Codepod's client acknowledges output as the IDE does (`ack` every 128 KiB; it "draws"
//! at once), so the server holds it to the same flow-control window as a browser;
//! `--no-ack` leaves that out (the server then paces it by its socket alone).

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark run aborts on the first failure; there is nothing to recover"
)]

use std::time::{Duration, Instant};

use codepod_bench::{Samples, machine, ms};
use futures_util::{SinkExt, StreamExt};
use model::ws::{Acknowledger, ClientMessage, ServerMessage, decode_data, encode_data};
use serde_json::json;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message as Ws, client::IntoClientRequest},
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const KEYSTROKES: usize = 1000;
const TYPISTS: usize = 50;
const KEYSTROKES_EACH: usize = 60;
/// Pause between one typist's keystrokes: 20 keys/s, a fast typist.
const THINK: Duration = Duration::from_millis(50);
const FILE_BYTES: usize = 50_000_000;

#[derive(Clone)]
enum Peer {
    Codepod { base: String },
    Jupyter { base: String, token: String },
}

impl Peer {
    fn name(&self) -> &'static str {
        match self {
            Self::Codepod { .. } => "codepod",
            Self::Jupyter { .. } => "jupyter",
        }
    }
}

/// One terminal session over its WebSocket.
struct Term {
    socket: Socket,
    /// Codepod's terminal id; Jupyter has one terminal per socket.
    terminal: model::TerminalId,
    jupyter: bool,
    lagged: usize,
    /// Codepod's output taken in on this socket, and when to acknowledge it.
    acks: Acknowledger,
    /// Output read past the last needle, for the next read.
    pending: Vec<u8>,
    /// Jupyter's terminal: its URL, to delete it.
    jupyter_url: Option<(String, String)>,
}

fn ws_base(base: &str) -> String {
    base.replacen("http://", "ws://", 1)
}

impl Term {
    /// A new shell, ready at its prompt; and the time from asking for it to its first output.
    async fn open(peer: &Peer, user: usize) -> (Self, Duration) {
        match peer {
            Peer::Codepod { base } => {
                let name = format!("bench{user}_{}", uuid::Uuid::new_v4().simple());
                let name = &name[..name.len().min(30)];
                let (_, cookie, id) = codepod_bench::account_with_workspace(base, name).await;
                let started = Instant::now();
                let mut request = format!("{}/ws/workspaces/{id}", ws_base(base))
                    .into_client_request()
                    .expect("request");
                request
                    .headers_mut()
                    .insert("cookie", cookie.parse().expect("header"));
                let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
                    .await
                    .expect("codepod socket");
                let mut term = Self {
                    socket,
                    terminal: model::TerminalId(0),
                    jupyter: false,
                    lagged: 0,
                    acks: Acknowledger::default(),
                    pending: Vec::new(),
                    jupyter_url: None,
                };
                term.control_until(|m| matches!(m, ServerMessage::Terminals { .. }))
                    .await;
                if ACKS.load(std::sync::atomic::Ordering::Relaxed) {
                    term.control(&ClientMessage::Ack { bytes: 0 }).await;
                }
                term.control(&ClientMessage::Open {
                    cols: 120,
                    rows: 40,
                })
                .await;
                let ServerMessage::Opened { terminal, .. } = term
                    .control_until(|m| matches!(m, ServerMessage::Opened { .. }))
                    .await
                else {
                    unreachable!()
                };
                term.terminal = terminal;
                term.control(&ClientMessage::Attach { terminal }).await;
                term.read_some().await;
                let first = started.elapsed();
                term.prompt().await;
                (term, first)
            }
            Peer::Jupyter { base, token } => {
                let started = Instant::now();
                let created: serde_json::Value = reqwest::Client::new()
                    .post(format!("{base}/api/terminals"))
                    .header("authorization", format!("token {token}"))
                    .send()
                    .await
                    .expect("jupyter terminal")
                    .json()
                    .await
                    .expect("jupyter terminal");
                let name = created["name"].as_str().expect("name");
                let url = format!("{}/terminals/websocket/{name}?token={token}", ws_base(base));
                let (socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
                    .await
                    .expect("jupyter socket");
                let mut term = Self {
                    socket,
                    terminal: model::TerminalId(0),
                    jupyter: true,
                    lagged: 0,
                    acks: Acknowledger::default(),
                    pending: Vec::new(),
                    jupyter_url: Some((format!("{base}/api/terminals/{name}"), token.clone())),
                };
                term.send_json(&json!(["set_size", 40, 120, 800, 1200]))
                    .await;
                term.read_some().await;
                let first = started.elapsed();
                term.prompt().await;
                (term, first)
            }
        }
    }

    /// Sets the same plain prompt on both peers (root's would end in `# `) and waits for it.
    async fn prompt(&mut self) {
        self.keys("PS1='$ '; echo RE\"\"ADY\r").await;
        // One needle: the prompt may come in the same chunk as the word before it.
        self.read_until(b"READY").await;
        self.read_until(b"$ ").await;
    }

    async fn send_json(&mut self, value: &serde_json::Value) {
        self.socket
            .send(Ws::text(value.to_string()))
            .await
            .expect("send");
    }

    async fn control(&mut self, message: &ClientMessage) {
        let text = serde_json::to_string(message).expect("json");
        self.socket.send(Ws::text(text)).await.expect("send");
    }

    /// The next message on the socket. Codepod's output is counted, and acknowledged once
    /// taken in: before waiting for more (so no acknowledgement is left unsent when a read
    /// is cancelled, and a server waiting for one always gets it).
    async fn next_message(&mut self) -> Option<Result<Ws, tungstenite::Error>> {
        if let Some(bytes) = self.acks.due()
            && ACKS.load(std::sync::atomic::Ordering::Relaxed)
        {
            self.control(&ClientMessage::Ack { bytes }).await;
            self.acks.acknowledged(bytes);
        }
        let message = self.socket.next().await;
        if !self.jupyter
            && let Some(Ok(Ws::Binary(frame))) = &message
            && let Some((_, data)) = decode_data(frame)
        {
            self.acks.take(data.len());
        }
        message
    }

    async fn control_until(&mut self, want: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            match self.next_message().await {
                Some(Ok(Ws::Text(text))) => {
                    let message: ServerMessage = serde_json::from_str(&text).expect("control");
                    if want(&message) {
                        return message;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    }

    /// Sends keystrokes the way each peer's browser client does.
    async fn keys(&mut self, keys: &str) {
        let message = if self.jupyter {
            Ws::text(json!(["stdin", keys]).to_string())
        } else {
            Ws::binary(encode_data(self.terminal, keys.as_bytes()))
        };
        self.socket.send(message).await.expect("send keys");
    }

    /// The next terminal output (at least one byte).
    async fn read_some(&mut self) -> Vec<u8> {
        if !self.pending.is_empty() {
            return std::mem::take(&mut self.pending);
        }
        loop {
            match self.next_message().await {
                Some(Ok(Ws::Binary(frame))) if !self.jupyter => {
                    if let Some((_, data)) = decode_data(&frame)
                        && !data.is_empty()
                    {
                        return data.to_vec();
                    }
                }
                Some(Ok(Ws::Text(text))) if self.jupyter => {
                    let value: serde_json::Value =
                        serde_json::from_str(&text).expect("terminado message");
                    if value[0] == "stdout"
                        && let Some(data) = value[1].as_str()
                        && !data.is_empty()
                    {
                        return data.as_bytes().to_vec();
                    }
                }
                Some(Ok(Ws::Text(text))) => {
                    if let Ok(ServerMessage::Lagged { .. }) = serde_json::from_str(&text) {
                        self.lagged += 1;
                        let terminal = self.terminal;
                        self.control(&ClientMessage::Attach { terminal }).await;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    }

    /// Reads until `needle` has been seen (what follows it is kept for the next read); the
    /// bytes read.
    async fn read_until(&mut self, needle: &[u8]) -> usize {
        let mut total = 0;
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let data = self.read_some().await;
            total += data.len();
            tail.extend_from_slice(&data);
            if let Some(at) = tail
                .windows(needle.len())
                .position(|window| window == needle)
            {
                self.pending = tail.split_off(at + needle.len());
                return total;
            }
            if tail.len() > 4 * needle.len() + 4096 {
                tail.drain(..tail.len() - needle.len());
            }
        }
    }

    /// Ends the shell and everything in it (a flood that is not read stays running).
    async fn close(mut self) {
        match self.jupyter_url.take() {
            Some((url, token)) => {
                reqwest::Client::new()
                    .delete(url)
                    .header("authorization", format!("token {token}"))
                    .send()
                    .await
                    .expect("delete the jupyter terminal");
            }
            None => {
                let terminal = self.terminal;
                self.control(&ClientMessage::Close { terminal }).await;
                self.control_until(|m| matches!(m, ServerMessage::Exited { .. }))
                    .await;
            }
        }
    }

    /// One keystroke to its echo; then rubs it out (not timed).
    async fn echo(&mut self) -> Duration {
        let started = Instant::now();
        self.keys("x").await;
        self.read_until(b"x").await;
        let elapsed = started.elapsed();
        self.keys("\x7f").await;
        self.read_until(b"\x08").await;
        elapsed
    }
}

async fn typists(peer: &Peer, count: usize, first_user: usize) -> Vec<Term> {
    let mut terms = Vec::new();
    for i in 0..count {
        terms.push(Term::open(peer, first_user + i).await.0);
    }
    terms
}

async fn type_concurrently(terms: Vec<Term>) -> (Samples, Vec<Term>) {
    let tasks: Vec<_> = terms
        .into_iter()
        .enumerate()
        .map(|(i, mut term)| {
            tokio::spawn(async move {
                // Stagger the typists over one think time.
                tokio::time::sleep(THINK * u32::try_from(i).unwrap_or(0) / TYPISTS as u32).await;
                let mut samples = Samples::default();
                for _ in 0..KEYSTROKES_EACH {
                    samples.push(term.echo().await);
                    tokio::time::sleep(THINK).await;
                }
                (samples, term)
            })
        })
        .collect();
    let mut all = Samples::default();
    let mut terms = Vec::new();
    for task in tasks {
        let (samples, term) = task.await.expect("typist");
        all.extend(samples);
        terms.push(term);
    }
    (all, terms)
}

/// Everything measured for one peer, pooled over the rounds.
#[derive(Default)]
struct Results {
    create: Samples,
    single: Samples,
    fifty: Samples,
    flood: Samples,
    flood_bytes: Vec<usize>,
    throughput_mb_s: Vec<f64>,
    lagged: usize,
}

/// Rounds of each measurement, taken in turn for each peer (A B A B …): a change in the
/// machine's load during the run reaches both peers alike.
const ROUNDS: usize = 4;
const LOAD_ROUNDS: usize = 2;

async fn create(peer: &Peer, results: &mut Results, round: usize) {
    for i in 0..3 {
        let (term, first) = Term::open(peer, 1000 + round * 10 + i).await;
        results.create.push(first);
        drop(term);
    }
}

async fn single(term: &mut Term, results: &mut Results) {
    for _ in 0..KEYSTROKES / ROUNDS {
        results.single.push(term.echo().await);
    }
}

/// Writes the `FILE_BYTES` file the `cat`s read, then prints MADE.
fn make_file_command() -> String {
    format!(
        "yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxy | head -c {FILE_BYTES} > big.txt; echo MA\"\"DE\r"
    )
}

async fn make_file(term: &mut Term) {
    term.keys(&make_file_command()).await;
    term.read_until(b"MADE").await;
    term.read_until(b"$ ").await;
}

async fn cat(term: &mut Term, results: &mut Results) {
    let started = Instant::now();
    let lagged = term.lagged;
    term.keys("cat big.txt; echo DO\"\"NE\r").await;
    let bytes = term.read_until(b"DONE").await;
    term.read_until(b"$ ").await;
    let seconds = started.elapsed().as_secs_f64();
    let rate = FILE_BYTES as f64 / 1e6 / seconds;
    // Detached for lagging, the client skipped output: the round does not count.
    if term.lagged > lagged {
        println!("  cat: incomplete, detached for lagging ({bytes} bytes in {seconds:.2} s)");
        return;
    }
    println!("  cat: {rate:.1} MB/s ({bytes} bytes in {seconds:.2} s)");
    results.throughput_mb_s.push(rate);
}

async fn flood(peer: &Peer, terms: Vec<Term>, results: &mut Results, round: usize) -> Vec<Term> {
    let (mut flooder, _) = Term::open(peer, 90 + round).await;
    flooder.keys("yes flood-flood-flood-flood-flood\r").await;
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        let mut bytes = 0usize;
        while !STOP.load(std::sync::atomic::Ordering::Relaxed)
            && started.elapsed() < Duration::from_secs(300)
        {
            if let Ok(data) =
                tokio::time::timeout(Duration::from_millis(100), flooder.read_some()).await
            {
                bytes += data.len();
            }
        }
        flooder.close().await;
        bytes
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut samples, terms) = type_concurrently(terms).await;
    println!("  {}: {}", peer.name(), samples.summary());
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    let flood_bytes = reader.await.expect("flood reader");
    STOP.store(false, std::sync::atomic::Ordering::Relaxed);
    results.flood.extend(samples);
    results.flood_bytes.push(flood_bytes);
    terms
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether Codepod's client acknowledges output (`--no-ack` clears it).
static ACKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The ceiling: the same bash on a bare PTY on this machine, read with blocking reads by a
/// thread of this process, no server in between (echo, and `cat` of the same file).
fn pty_alone(dir: &std::path::Path) -> (Samples, f64) {
    use std::io::Write;
    let (pty, pts) = pty_process::blocking::open().expect("pty");
    pty.resize(pty_process::Size::new(40, 120)).expect("resize");
    let mut child = pty_process::blocking::Command::new("bash")
        .args(["--norc", "--noprofile"])
        .current_dir(dir)
        .env("PS1", "$ ")
        .spawn(pts)
        .expect("bash");
    let mut pty = BarePty {
        pty,
        buffer: vec![0u8; 64 * 1024],
        pending: Vec::new(),
    };
    pty.pty.write_all(b"echo RE\"\"ADY\r").expect("write");
    pty.read_until(b"READY");
    pty.read_until(b"$ ");
    let mut echo = Samples::default();
    for i in 0..KEYSTROKES + 50 {
        let started = Instant::now();
        pty.pty.write_all(b"x").expect("write");
        pty.read_until(b"x");
        if i >= 50 {
            echo.push(started.elapsed());
        }
        pty.pty.write_all(b"\x7f").expect("write");
        pty.read_until(b"\x08");
    }
    pty.pty
        .write_all(make_file_command().as_bytes())
        .expect("write");
    pty.read_until(b"MADE");
    pty.read_until(b"$ ");
    let mut rates = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        pty.pty
            .write_all(b"cat big.txt; echo DO\"\"NE\r")
            .expect("write");
        pty.read_until(b"DONE");
        pty.read_until(b"$ ");
        rates.push(FILE_BYTES as f64 / 1e6 / started.elapsed().as_secs_f64());
    }
    let _ = child.kill();
    let _ = child.wait();
    (echo, median(&mut rates))
}

struct BarePty {
    pty: pty_process::blocking::Pty,
    buffer: Vec<u8>,
    /// Output read past the last needle, for the next read.
    pending: Vec<u8>,
}

impl BarePty {
    /// Reads until `needle` (what follows it is kept for the next read).
    fn read_until(&mut self, needle: &[u8]) {
        use std::io::Read;
        let mut seen = std::mem::take(&mut self.pending);
        loop {
            if let Some(at) = seen
                .windows(needle.len())
                .position(|window| window == needle)
            {
                self.pending = seen.split_off(at + needle.len());
                return;
            }
            if seen.len() > 8192 {
                seen.drain(..seen.len() - needle.len());
            }
            let n = self.pty.read(&mut self.buffer).expect("read");
            seen.extend_from_slice(&self.buffer[..n]);
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn argument(name: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| panic!("missing {name}"))
}

fn ratio(ours: Duration, theirs: Duration) -> String {
    format!(
        "{:.2}×",
        ours.as_secs_f64() / theirs.as_secs_f64().max(1e-9)
    )
}

#[tokio::main]
async fn main() {
    println!("machine: {}", machine());
    let peers = [
        Peer::Codepod {
            base: argument("--codepod"),
        },
        Peer::Jupyter {
            base: argument("--jupyter"),
            token: argument("--token"),
        },
    ];
    let mut results = [Results::default(), Results::default()];
    if std::env::args().any(|arg| arg == "--no-ack") {
        ACKS.store(false, std::sync::atomic::Ordering::Relaxed);
        println!("Codepod's client does not acknowledge output (--no-ack)");
    }

    // `--only load`: just the typists with and without a flood; `--only echo`: just the
    // bare PTY and one typist (quicker, for experiments).
    let only = std::env::args()
        .any(|arg| arg == "--only")
        .then(|| argument("--only"));
    // What runs: the bare PTY and one typist; terminal creation and the `cat`s; the typists.
    let (echo, rest, load) = match only.as_deref() {
        None => (true, true, true),
        Some("load") => (false, false, true),
        Some("echo") => (true, false, false),
        Some(other) => panic!("--only load or --only echo, not {other}"),
    };
    let mut pty_echo = Samples::default();
    let mut pty_cat = 0.0;
    // One terminal per peer, for the typist and the `cat`s.
    let mut terms = Vec::new();
    if echo {
        println!("the same bash on a bare PTY, no server (the ceiling)");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        (pty_echo, pty_cat) = tokio::task::spawn_blocking(move || pty_alone(&path))
            .await
            .expect("bare pty");
        println!("  echo {}; cat {pty_cat:.1} MB/s", pty_echo.summary());
    }
    if rest {
        println!("terminal creation → first output, {ROUNDS} rounds of 3 each");
        for round in 0..ROUNDS {
            for (peer, results) in peers.iter().zip(&mut results) {
                create(peer, results, round).await;
            }
        }
    }
    if echo {
        println!(
            "keystroke → echo, 1 typist, {ROUNDS} rounds of {} keystrokes each",
            KEYSTROKES / ROUNDS
        );
        for peer in &peers {
            let (mut term, _) = Term::open(peer, 0).await;
            for _ in 0..50 {
                term.echo().await;
            }
            terms.push(term);
        }
        for _ in 0..ROUNDS {
            for (term, results) in terms.iter_mut().zip(&mut results) {
                single(term, results).await;
            }
        }
    }
    if rest {
        println!("output throughput: cat of a {FILE_BYTES}-byte file, 3 rounds");
        for term in &mut terms {
            make_file(term).await;
        }
        for _ in 0..3 {
            for ((term, results), peer) in terms.iter_mut().zip(&mut results).zip(&peers) {
                print!("{}", peer.name());
                cat(term, results).await;
            }
        }
        for (term, results) in terms.iter_mut().zip(&mut results) {
            term.keys("rm big.txt\r").await;
            results.lagged = term.lagged;
        }
    }

    if load {
        println!("keystroke → echo, {TYPISTS} concurrent typists, {LOAD_ROUNDS} rounds");
        let mut typing = Vec::new();
        for peer in &peers {
            typing.push(typists(peer, TYPISTS, 100).await);
        }
        for _ in 0..LOAD_ROUNDS {
            for (terms, results) in typing.iter_mut().zip(&mut results) {
                let (samples, back) = type_concurrently(std::mem::take(terms)).await;
                results.fifty.extend(samples);
                *terms = back;
            }
        }

        println!(
            "the same {TYPISTS} typists while one more session floods output, {LOAD_ROUNDS} rounds"
        );
        for round in 0..LOAD_ROUNDS {
            for ((terms, results), peer) in typing.iter_mut().zip(&mut results).zip(&peers) {
                *terms = flood(peer, std::mem::take(terms), results, round).await;
            }
        }
        drop(typing);
    }

    let [ours, theirs] = &mut results;
    println!();
    println!("| measure | Codepod | JupyterLab terminal | Codepod / peer | bash on a bare PTY |");
    println!("|---|---|---|---|---|");
    let row = |label: &str, a: &mut Samples, b: &mut Samples, bare: Option<&mut Samples>| {
        let mut bare = bare;
        for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
            let (x, y) = (a.quantile(q), b.quantile(q));
            let alone = bare.as_mut().map_or(String::new(), |samples| {
                format!("{:.3} ms", ms(samples.quantile(q)))
            });
            println!(
                "| {label} {name} | {:.3} ms | {:.3} ms | {} | {alone} |",
                ms(x),
                ms(y),
                ratio(x, y)
            );
        }
    };
    row(
        "terminal creation → first output",
        &mut ours.create,
        &mut theirs.create,
        None,
    );
    row(
        "echo, 1 typist",
        &mut ours.single,
        &mut theirs.single,
        Some(&mut pty_echo),
    );
    row(
        &format!("echo, {TYPISTS} typists"),
        &mut ours.fifty,
        &mut theirs.fifty,
        None,
    );
    row(
        &format!("echo, {TYPISTS} typists + 1 flood"),
        &mut ours.flood,
        &mut theirs.flood,
        None,
    );
    let complete = ours.throughput_mb_s.len();
    let (a, b) = (
        median(&mut ours.throughput_mb_s),
        median(&mut theirs.throughput_mb_s),
    );
    println!(
        "| output throughput (cat 50 MB, median of {complete} complete) | {a:.1} MB/s | {b:.1} MB/s | {:.2}× | {pty_cat:.1} MB/s |",
        a / b.max(1e-9)
    );
    let mb = |bytes: &[usize]| bytes.iter().sum::<usize>() as f64 / 1e6 / bytes.len().max(1) as f64;
    println!(
        "| flood delivered per typists' round | {:.1} MB | {:.1} MB | | |",
        mb(&ours.flood_bytes),
        mb(&theirs.flood_bytes)
    );
    println!(
        "(Codepod's fast client was detached for lagging {} times during the cats; those rounds do not count)",
        ours.lagged
    );
}
