//! `codepod-agent (--socket PATH | --listen-stdin) --workspace DIR [--home DIR]
//! [--egress-stdout]`: serve the workspace's terminals on a Unix socket until killed — one
//! it binds at PATH (a Kubernetes pod), or the listening socket it was given as its stdin
//! (the local runtime makes it on the host, where the sandbox cannot touch its path). With
//! `--egress-stdout`, programs inside reach the network through the host's filtering proxy,
//! over the datagram socket given as its stdout.
//!
//! `codepod-agent attach SOCKET` relays stdin/stdout to a running agent (how the server
//! reaches it through `kubectl exec`), `codepod-agent probe SOCKET` checks that one answers,
//! and `codepod-agent stage … -- bwrap …` is the host-side step before a local sandbox
//! (`agent::stage`).

use std::path::PathBuf;

use std::sync::Arc;

use agent::{ShellConfig, Terminals, Workspace, connection};
use tokio::net::UnixListener;

/// Where the agent takes connections.
enum Listen {
    /// Bind a socket here.
    Path(PathBuf),
    /// The listening socket is stdin.
    Stdin,
}

struct Args {
    listen: Listen,
    workspace: PathBuf,
    home: PathBuf,
    egress_stdout: bool,
    /// General egress through the host's proxy (on the channel).
    proxy: bool,
    /// The package index (on the channel).
    package_index: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut workspace = None;
    let mut home = None;
    let mut egress_stdout = false;
    let mut proxy = false;
    let mut package_index = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen-stdin" => listen = Some(Listen::Stdin),
            "--egress-stdout" => egress_stdout = true,
            "--proxy" => proxy = true,
            "--package-index" => package_index = true,
            "--socket" | "--workspace" | "--home" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--socket" => listen = Some(Listen::Path(PathBuf::from(value))),
                    "--workspace" => workspace = Some(PathBuf::from(value)),
                    _ => home = Some(PathBuf::from(value)),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let workspace = workspace.ok_or("--workspace is required")?;
    Ok(Args {
        listen: listen.ok_or("--socket or --listen-stdin is required")?,
        home: home.unwrap_or_else(|| workspace.clone()),
        workspace,
        egress_stdout,
        proxy,
        package_index,
    })
}

/// The listening socket handed over as stdin.
fn stdin_listener() -> std::io::Result<UnixListener> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned()?;
    let listener = std::os::unix::net::UnixListener::from(fd);
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// The egress channel handed over as stdout.
fn stdout_channel() -> std::io::Result<tokio::net::UnixDatagram> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
    let channel = std::os::unix::net::UnixDatagram::from(fd);
    channel.set_nonblocking(true)?;
    tokio::net::UnixDatagram::from_std(channel)
}

/// `codepod-agent measure RESULT_FILE -- PROGRAM ARGS…`: runs the program on this
/// process's terminal, then writes `exit wall_ms peak_rss_kib` to RESULT_FILE and exits
/// with the program's code. The agent runs `Run` requests through it: only a parent that
/// waited for the program can read its peak memory (`getrusage(RUSAGE_CHILDREN)`). Like a
/// shell waiting for a job, it outlives the ^C (or ^\) that stops the program — it is in
/// the terminal's foreground too — and reports the program's end (130 for SIGINT).
#[tokio::main(flavor = "current_thread")]
async fn measure(mut args: impl Iterator<Item = String>) -> std::process::ExitCode {
    let (Some(result_file), Some(_dashes), Some(program)) = (args.next(), args.next(), args.next())
    else {
        eprintln!("usage: codepod-agent measure RESULT_FILE -- PROGRAM [ARGS…]");
        return std::process::ExitCode::from(2);
    };
    // Caught and dropped while the program runs, which starts with them at their defaults.
    let _signals = match agent::signals::Signals::install() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("codepod-agent measure: cannot handle signals: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let status = tokio::process::Command::new(&program)
        .args(args)
        .status()
        .await;
    let wall_ms = started.elapsed().as_millis();
    let code = match &status {
        Ok(status) => status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        }),
        Err(error) => {
            eprintln!("{program}: {error}");
            127
        }
    };
    // ru_maxrss is in KiB on Linux.
    let peak_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|usage| usage.max_rss().max(0))
        .unwrap_or(0);
    let _ = std::fs::write(&result_file, format!("{code} {wall_ms} {peak_kib}\n"));
    std::process::ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

/// `codepod-agent attach SOCKET`: relays this process's stdin and stdout to the agent at
/// SOCKET, byte for byte, until either side closes. On Kubernetes the server runs it with
/// `exec` in the sandbox pod, so any server replica reaches the agent through the API
/// server and the agent (with its terminals) outlives the connection.
#[tokio::main(flavor = "current_thread")]
async fn attach(mut args: impl Iterator<Item = String>) -> std::process::ExitCode {
    let Some(socket) = args.next() else {
        eprintln!("usage: codepod-agent attach SOCKET");
        return std::process::ExitCode::from(2);
    };
    let stream = match tokio::net::UnixStream::connect(&socket).await {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("codepod-agent attach: cannot reach {socket}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The container runtime gives exec'd processes pipes: read and write them directly,
    // without tokio's stdin/stdout, which hand every read and write to a blocking thread
    // (two thread hops per keystroke). Anything else (a terminal, by hand) falls back.
    match stdio_pipes() {
        Ok((stdin, stdout)) => relay(stream, stdin, stdout).await,
        Err(_) => relay(stream, tokio::io::stdin(), tokio::io::stdout()).await,
    }
    std::process::ExitCode::SUCCESS
}

/// This process's stdin and stdout as non-blocking pipes, if they are pipes.
fn stdio_pipes() -> std::io::Result<(
    tokio::net::unix::pipe::Receiver,
    tokio::net::unix::pipe::Sender,
)> {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin().as_fd().try_clone_to_owned()?;
    let stdout = std::io::stdout().as_fd().try_clone_to_owned()?;
    Ok((
        tokio::net::unix::pipe::Receiver::from_owned_fd(stdin)?,
        tokio::net::unix::pipe::Sender::from_owned_fd(stdout)?,
    ))
}

/// Copies `input` to the agent and the agent's output to `output` until either side ends.
async fn relay<R, W>(stream: tokio::net::UnixStream, mut input: R, output: W)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    /// Matches the agent's coalescing: one output frame, one read and one write.
    const CHUNK: usize = 64 * 1024;
    let (from_agent, mut to_agent) = stream.into_split();
    let upstream = async {
        let copied = tokio::io::copy(&mut input, &mut to_agent).await;
        // The server closed its side: tell the agent this connection is over.
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_agent).await;
        copied
    };
    let downstream = async {
        let mut from_agent = tokio::io::BufReader::with_capacity(CHUNK, from_agent);
        let mut output = output;
        let copied = tokio::io::copy_buf(&mut from_agent, &mut output).await;
        let _ = tokio::io::AsyncWriteExt::flush(&mut output).await;
        copied
    };
    // Whichever side ends first ends the relay: a half-open relay would keep the exec
    // session (and its API server stream) alive for nothing.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// `codepod-agent probe SOCKET`: exits 0 when the agent at SOCKET accepts connections (the
/// sandbox pod's readiness probe).
fn probe(mut args: impl Iterator<Item = String>) -> std::process::ExitCode {
    let Some(socket) = args.next() else {
        eprintln!("usage: codepod-agent probe SOCKET");
        return std::process::ExitCode::from(2);
    };
    match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("codepod-agent probe: {socket}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("measure") => {
            args.next();
            return measure(args);
        }
        Some("attach") => {
            args.next();
            return attach(args);
        }
        Some("probe") => {
            args.next();
            return probe(args);
        }
        Some("stage") => {
            args.next();
            let error = match agent::stage::parse(args) {
                Ok(plan) => agent::stage::run(plan),
                Err(usage) => format!("{usage}\nusage: see `agent/src/stage.rs`"),
            };
            eprintln!("codepod-agent stage: {error}");
            return std::process::ExitCode::from(70);
        }
        _ => {}
    }
    if agent::init::is_first_process() {
        return agent::init::supervise().unwrap_or_else(|error| {
            eprintln!("codepod-agent: cannot start as the first process: {error}");
            std::process::ExitCode::FAILURE
        });
    }
    serve()
}

#[tokio::main(flavor = "current_thread")]
async fn serve() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("info")
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!(
                "codepod-agent: {message}\nusage: codepod-agent (--socket PATH | --listen-stdin) --workspace DIR [--home DIR] [--egress-stdout [--proxy] [--package-index]]"
            );
            return std::process::ExitCode::from(2);
        }
    };
    let bound = match &args.listen {
        Listen::Path(path) => {
            let _ = std::fs::remove_file(path);
            UnixListener::bind(path)
        }
        Listen::Stdin => stdin_listener(),
    };
    let listener = match bound {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("codepod-agent: cannot listen: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let workspace = match Workspace::open(&args.workspace) {
        Ok(workspace) => Arc::new(workspace),
        Err(error) => {
            eprintln!(
                "codepod-agent: cannot open the workspace {}: {error}",
                args.workspace.display()
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let changes = match agent::watch::start(args.workspace.clone(), workspace.clone()) {
        Ok(changes) => Some(changes),
        Err(error) => {
            tracing::error!(error = %error, "cannot watch the workspace; changes made inside will not sync");
            None
        }
    };
    let home = args.home.to_string_lossy().into_owned();
    let mut env = Vec::new();
    if args.egress_stdout {
        let channel = match stdout_channel() {
            Ok(channel) => std::sync::Arc::new(channel),
            Err(error) => {
                eprintln!("codepod-agent: no channel to the host on stdout: {error}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let mut relays = Vec::new();
        if args.proxy {
            relays.push((agent::egress::PROXY_ADDRESS, agent::egress::TAG_PROXY));
            env.extend(agent::egress::proxy_env());
        }
        if args.package_index {
            relays.push((agent::egress::INDEX_ADDRESS, agent::egress::TAG_INDEX));
            env.extend(agent::egress::index_env());
        }
        for (address, tag) in relays {
            let Ok(listen) = address.parse::<std::net::SocketAddr>() else {
                continue;
            };
            let channel = channel.clone();
            tokio::spawn(async move {
                if let Err(error) = agent::egress::relay(listen, channel, tag).await {
                    tracing::error!(error = %error, %listen, "relay to the host stopped");
                }
            });
        }
    }
    // Figures shown with matplotlib (its backend hands them over through this directory).
    // (In the temporary directory, the sandbox's own: never in the workspace, which is also
    // the home when no --home is given.)
    let plots = agent::Plots::start(
        std::env::temp_dir().join(format!(".codepod-plots-{}", std::process::id())),
    );
    env.extend(plots.env());
    // The runtime sets PATH for the agent (e.g. with the Python environment first).
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
    let base_env = [
        ("HOME".to_owned(), home),
        ("PATH".to_owned(), path.clone()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ];
    let lsp = agent::Lsp::start(
        agent::LspConfig::for_sandbox(&args.workspace, &args.home, &path, &base_env),
        changes.clone(),
    );
    let terminals = Terminals::new(ShellConfig {
        program: PathBuf::from("bash"),
        args: vec!["--login".to_owned()],
        cwd: args.workspace.clone(),
        env: [
            ("TERM".to_owned(), "xterm-256color".to_owned()),
            ("SHELL".to_owned(), "/bin/bash".to_owned()),
        ]
        .into_iter()
        .chain(base_env)
        .chain(env)
        .collect(),
    });
    // Before the first shell starts: its jobs get every signal at its default.
    let mut signals = match agent::signals::Signals::install() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("codepod-agent: cannot handle signals: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let environment = agent::Environment::new(args.home.clone());
    let sandbox = connection::Sandbox {
        terminals,
        workspace,
        changes,
        lsp,
        environment,
        plots,
    };
    tracing::info!(workspace = %args.workspace.display(), "agent ready");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            signal = signals.stop() => {
                tracing::info!(signal = signal.as_str(), "stopping");
                return std::process::ExitCode::SUCCESS;
            }
        };
        match accepted {
            Ok((stream, _)) => {
                let (reader, writer) = stream.into_split();
                // Buffered: a frame's length and body (and often the next frames) in one
                // read instead of two per frame.
                let reader = tokio::io::BufReader::with_capacity(64 * 1024, reader);
                tokio::spawn(connection::serve(reader, writer, sandbox.clone()));
            }
            Err(error) => tracing::warn!(error = %error, "accept failed"),
        }
    }
}
