//! Hostile tests: a real bubblewrap sandbox running the real agent, attacked from the inside
//! through a real shell. Each test states the claim it attacks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure here is a failed test"
)]

use std::{path::PathBuf, time::Duration};

use protocol::Message;
use sandbox::{
    AgentClient, Limits, Runtime, SandboxId,
    local::{LocalConfig, LocalRuntime},
};

fn agent_bin() -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/codepod-agent
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("codepod-agent");
    assert!(
        bin.exists(),
        "build the agent first (cargo build -p agent): {}",
        bin.display()
    );
    bin
}

/// The environment scripts/setup.sh installs.
fn python_env() -> PathBuf {
    let env = PathBuf::from(
        std::env::var("CODEPOD_PYTHON_ENV").unwrap_or_else(|_| "/opt/codepod/python".to_owned()),
    );
    assert!(
        env.join("bin/python").exists(),
        "run scripts/setup.sh first: no {}",
        env.display()
    );
    env
}

struct Fixture {
    runtime: LocalRuntime,
    id: SandboxId,
    root: tempfile::TempDir,
}

async fn sandbox_with(limits: Limits) -> Fixture {
    sandbox_configured(|config| config.limits = limits).await
}

async fn sandbox_configured(adjust: impl FnOnce(&mut LocalConfig)) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(root.path().to_path_buf(), agent_bin());
    config.python_env = Some(python_env());
    adjust(&mut config);
    let runtime = LocalRuntime::new(config).unwrap();
    let id = SandboxId::parse(&format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        rand_suffix()
    ))
    .unwrap();
    runtime.ensure(&id).await.expect("the sandbox starts");
    Fixture { runtime, id, root }
}

async fn sandbox() -> Fixture {
    sandbox_with(Limits::default()).await
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    hasher.finish() & 0xffff_ffff_ffff
}

/// Runs `command` in a fresh terminal and returns everything the terminal printed up to the
/// end marker (which carries the exit status).
async fn run(client: &mut AgentClient, command: &str) -> String {
    let terminal = match client
        .request(Message::OpenTerminal {
            cols: 200,
            rows: 50,
        })
        .await
        .unwrap()
    {
        Message::TerminalOpened { terminal } => terminal,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        client.request(Message::Attach { terminal }).await.unwrap(),
        Message::Ok
    );
    // The marker is split in the typed text so that only the output contains it whole.
    let line = format!("{command}; echo __DO\"\"NE__$?\r");
    client
        .send(Message::Input {
            terminal,
            data: line.into_bytes(),
        })
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(deadline, client.next())
            .await
            .expect("the command finishes")
            .expect("agent alive");
        if let Message::Output { data, .. } = frame.message {
            seen.push_str(&String::from_utf8_lossy(&data));
            let clean = strip_ansi(&seen);
            // What the command printed: after the (last) echo of the typed line; the line
            // is echoed twice when typed before bash is reading.
            let Some(typed) = clean.rfind("__DO\"\"NE__$?") else {
                continue;
            };
            let Some(line_end) = clean[typed..].find('\n') else {
                continue;
            };
            let printed = &clean[typed + line_end + 1..];
            if let Some(at) = printed.find("__DONE__")
                && printed[at..].contains('\n')
            {
                let _ = client.request(Message::CloseTerminal { terminal }).await;
                return printed.to_owned();
            }
        }
    }
}

/// Removes terminal escape sequences (bash's bracketed-paste toggles and the like).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn status_of(output: &str) -> i32 {
    let at = output.find("__DONE__").unwrap() + "__DONE__".len();
    output[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_shell_runs_as_an_unprivileged_user_in_the_workspace() {
    let f = sandbox().await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(
        &mut client,
        "echo \"$(id -un):$(id -u):$(pwd):$HOME:$TERM\"",
    )
    .await;
    assert!(
        out.contains("user:1000:/workspace:/home/user:xterm-256color"),
        "{out}"
    );
    let out = run(&mut client, "python3 -c 'print(6*7)'").await;
    assert!(
        out.lines().any(|line| line.trim() == "42"),
        "python3 runs: {out}"
    );
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn numpy_pandas_and_scipy_are_importable_and_the_environment_is_read_only() {
    let f = sandbox().await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(
        &mut client,
        "python3 -c 'import numpy, pandas, scipy; print(\"ok\", numpy.arange(3).sum())'",
    )
    .await;
    assert!(out.lines().any(|line| line.trim() == "ok 3"), "{out}");
    let out = run(&mut client, "pip install --no-index nothing-here 2>&1 | tail -1; touch \"$(python3 -c 'import numpy, os; print(os.path.dirname(numpy.__file__))')/evil\"").await;
    assert_ne!(
        status_of(&out),
        0,
        "the shared environment is writable: {out}"
    );
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn there_is_no_network_not_even_to_the_host_or_the_metadata_address() {
    let f = sandbox().await;
    // A listener on the host's loopback that the sandbox must not reach.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(
        &mut client,
        &format!("timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'"),
    )
    .await;
    assert_ne!(
        status_of(&out),
        0,
        "connected to the host's loopback: {out}"
    );
    let out = run(
        &mut client,
        "timeout 5 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80'",
    )
    .await;
    assert_ne!(status_of(&out), 0, "reached the metadata address: {out}");
    let out = run(
        &mut client,
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\\n' ,",
    )
    .await;
    assert!(
        out.contains("lo,") && !out.contains("eth"),
        "only loopback exists: {out}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener.accept())
            .await
            .is_err(),
        "nothing connected"
    );
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn host_processes_files_and_environment_are_invisible() {
    let f = sandbox().await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(&mut client, "ls /proc | grep -cE '^[0-9]+$'").await;
    let processes: usize = out
        .lines()
        .find_map(|line| line.trim().parse().ok())
        .unwrap();
    assert!(processes < 10, "sees {processes} processes: {out}");
    let out = run(&mut client, "env").await;
    for leak in ["CARGO", "RUST", "CODEPOD_", "POSTGRES", "DATABASE"] {
        assert!(
            !out.contains(leak),
            "the server's environment leaks {leak}: {out}"
        );
    }
    let out = run(&mut client, "cat /etc/shadow").await;
    assert_ne!(status_of(&out), 0, "{out}");
    let host_root = f.root.path().display().to_string();
    let out = run(
        &mut client,
        &format!("ls {host_root} /work /root /var/lib/postgresql"),
    )
    .await;
    assert_ne!(status_of(&out), 0, "{out}");
    assert!(
        out.matches("No such file or directory").count() >= 3,
        "{out}"
    );
    let out = run(&mut client, "touch /usr/evil").await;
    assert_ne!(status_of(&out), 0, "the system is read-only: {out}");
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn two_sandboxes_cannot_see_each_other() {
    let a = sandbox().await;
    let b = sandbox().await;
    let mut in_a = a.runtime.connect(&a.id).await.unwrap();
    let mut in_b = b.runtime.connect(&b.id).await.unwrap();
    run(&mut in_a, "echo secret-of-a > /workspace/mine.txt").await;
    let out = run(&mut in_b, "ls /workspace; cat /workspace/mine.txt").await;
    assert!(!out.contains("secret-of-a"), "{out}");
    assert_ne!(status_of(&out), 0);
    a.runtime.stop(&a.id).await.unwrap();
    b.runtime.stop(&b.id).await.unwrap();
}

#[tokio::test]
async fn a_fork_bomb_hits_the_process_cap_and_the_host_stays_responsive() {
    let f = sandbox_with(Limits {
        max_processes: 64,
        ..Limits::default()
    })
    .await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    // The bomb forks until /tmp/stop exists. With the process table full nothing else can
    // fork, so everything after it is a bash builtin: `read -t` on the silent terminal
    // waits, a glob over /proc counts what is left. (A `timeout` around the bomb raced
    // with it: a child forked as the signal went out kept the table full, and the test
    // hung once.)
    let out = run(
        &mut client,
        "rm -f /tmp/stop; (:(){ [ -e /tmp/stop ] || { :|:& }; }; :) 2>/dev/null; read -t 8 _; \
         : > /tmp/stop; for ((i = 0; i < 45; i++)); do p=(/proc/[0-9]*); \
         (( ${#p[@]} < 8 )) && break; read -t 1 _; done; echo left=${#p[@]}",
    )
    .await;
    let stats = f.runtime.stats(&f.id).await.unwrap();
    if let Some(processes) = stats.processes {
        assert!(processes <= 64, "{processes} processes");
    }
    // It did hit the cap (where the pids cgroup is there to count it), and died out.
    let events = PathBuf::from("/sys/fs/cgroup/pids/codepod")
        .join(f.id.as_str())
        .join("pids.events");
    if let Ok(events) = std::fs::read_to_string(&events) {
        let refused: u64 = events.trim().trim_start_matches("max ").parse().unwrap();
        assert!(refused > 0, "the bomb never hit the cap: {events}");
    }
    let left: usize = out
        .split("left=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        left < 8,
        "the bomb did not die out: {left} processes left\n{out}"
    );
    // The host can still start processes.
    let started = std::process::Command::new("true").status().unwrap();
    assert!(started.success());
    assert!(out.contains("__DONE__"), "{out}");
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn a_memory_bomb_dies_inside_the_sandbox_only() {
    let f = sandbox_with(Limits {
        memory_bytes: 256 * 1024 * 1024,
        ..Limits::default()
    })
    .await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(
        &mut client,
        "python3 -c 'b = bytearray(1024 * 1024 * 1024); print(\"survived\", len(b))'",
    )
    .await;
    assert!(!out.contains("survived"), "{out}");
    assert_ne!(status_of(&out), 0, "{out}");
    // The agent and the shell machinery still work.
    assert!(
        run(&mut client, "echo alive-$((1+1))")
            .await
            .contains("alive-2")
    );
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn filling_the_disk_stops_at_the_workspace_cap() {
    let f = sandbox_with(Limits {
        workspace_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    })
    .await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(
        &mut client,
        "dd if=/dev/zero of=/workspace/fill bs=1M count=100 2>&1 | head -1",
    )
    .await;
    assert!(out.contains("No space left on device"), "{out}");
    let out = run(&mut client, "du -m /workspace/fill | cut -f1").await;
    let megabytes: u64 = out
        .lines()
        .find_map(|line| line.trim().parse().ok())
        .unwrap();
    assert!(megabytes <= 32, "{megabytes} MiB written: {out}");
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn a_killed_agent_is_replaced_by_the_next_ensure() {
    let f = sandbox().await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let terminal = match client
        .request(Message::OpenTerminal { cols: 80, rows: 24 })
        .await
        .unwrap()
    {
        Message::TerminalOpened { terminal } => terminal,
        other => panic!("{other:?}"),
    };
    // The shell's parent is the agent.
    client
        .send(Message::Input {
            terminal,
            data: b"kill -9 $PPID\r".to_vec(),
        })
        .await
        .unwrap();
    while client.next().await.is_some() {}
    f.runtime.ensure(&f.id).await.unwrap();
    let mut again = f.runtime.connect(&f.id).await.unwrap();
    assert_eq!(again.request(Message::Ping).await.unwrap(), Message::Pong);
    f.runtime.stop(&f.id).await.unwrap();
    assert!(f.runtime.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn stop_removes_the_sandbox_and_its_cgroups() {
    let f = sandbox().await;
    assert_eq!(f.runtime.list().await.unwrap(), std::slice::from_ref(&f.id));
    f.runtime.stop(&f.id).await.unwrap();
    assert!(f.runtime.connect(&f.id).await.is_err());
    assert!(!f.root.path().join(f.id.as_str()).exists());
    for controller in ["pids", "memory", "cpu"] {
        assert!(
            !PathBuf::from(format!("/sys/fs/cgroup/{controller}/codepod"))
                .join(f.id.as_str())
                .exists(),
            "{controller}"
        );
    }
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn busy_loops_are_held_to_the_sandbox_cpu_cap() {
    let f = sandbox_with(Limits {
        cpu_millis: 200,
        ..Limits::default()
    })
    .await;
    let group = PathBuf::from(format!("/sys/fs/cgroup/cpu/codepod/{}", f.id));
    if !group.exists() {
        eprintln!("no cpu cgroup here; sandboxes run uncapped");
        f.runtime.stop(&f.id).await.unwrap();
        return;
    }
    assert_eq!(
        std::fs::read_to_string(group.join("cpu.cfs_quota_us"))
            .unwrap()
            .trim(),
        "20000"
    );
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    // Two busy loops (more processes do not get more CPU) for 3 s of wall time; bash says
    // how much CPU they had between them.
    let out = run(&mut client, &busy_loops(2)).await;
    let used = cpu_seconds(&out);
    // The cap allows 0.2 s per second: 0.6 s in all. Uncapped, two loops take what the
    // machine's cores give them, up to 6 s.
    assert!(used < 1.0, "the loops used {used} s of CPU in 3 s: {out}");
    let stat = std::fs::read_to_string(group.join("cpu.stat")).unwrap();
    let throttled: u64 = stat
        .lines()
        .find_map(|line| line.strip_prefix("nr_throttled "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(throttled > 0, "{stat}");
    f.runtime.stop(&f.id).await.unwrap();
}

/// The CPU seconds (user + system) in bash's `time` output printed with
/// `TIMEFORMAT='cpu=%U+%S'`.
fn cpu_seconds(out: &str) -> f64 {
    out.split("cpu=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no time in {out:?}"))
        .split('+')
        .map(|part| part.parse::<f64>().unwrap())
        .sum()
}

/// `count` busy loops for 3 s, timed by bash (see [`cpu_seconds`]).
fn busy_loops(count: usize) -> String {
    let loops = vec!["timeout 3 sh -c 'while :; do :; done' &"; count].join(" ");
    format!("TIMEFORMAT='cpu=%U+%S'; time {{ {loops} wait; }}")
}

#[tokio::test]
async fn busy_sandboxes_get_the_cpu_after_the_server() {
    // Uncapped, so that only the weight decides.
    let f = sandbox_with(Limits {
        cpu_millis: 0,
        ..Limits::default()
    })
    .await;
    let all = PathBuf::from("/sys/fs/cgroup/cpu/codepod");
    if !all.join(f.id.as_str()).exists() {
        eprintln!("no cpu cgroup here; sandboxes are weighed as any process");
        f.runtime.stop(&f.id).await.unwrap();
        return;
    }
    assert_eq!(
        std::fs::read_to_string(all.join("cpu.shares"))
            .unwrap()
            .trim(),
        sandbox::local::SANDBOXES_CPU_SHARES.to_string()
    );
    // A busy loop per core in the sandbox and as many outside it (standing in for the
    // server's threads), at the same time: the machine is short of CPU for 3 s.
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let loops = busy_loops(cores);
    let outside = tokio::process::Command::new("bash")
        .args(["-c", &loops])
        .output();
    let (inside, outside) = tokio::join!(run(&mut client, &loops), outside);
    let outside = String::from_utf8_lossy(&outside.unwrap().stderr).into_owned();
    let (inside, outside) = (cpu_seconds(&inside), cpu_seconds(&outside));
    // Measured here (two cores): the sandbox's loops get about a quarter of what the
    // others get (1.1–1.2 s against 4.6–4.8 s); with the sandboxes' group weighed as one
    // process, as before, as much (3.0 s each).
    assert!(
        inside * 2.0 < outside,
        "the sandbox's loops used {inside} s of CPU, the loops outside it {outside} s"
    );
    f.runtime.stop(&f.id).await.unwrap();
}

/// The resident memory of the sandbox's agent process, in KiB.
fn agent_rss_kib(id: &SandboxId) -> u64 {
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/codepod/{id}/cgroup.procs"))
        .unwrap();
    for pid in procs.lines() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim().starts_with("codepod-agent") {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let line = status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .unwrap();
            return line.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
    }
    panic!("no agent process in {id}'s cgroup");
}

#[tokio::test]
async fn an_output_flood_to_a_client_that_stops_reading_keeps_the_agent_bounded() {
    let f = sandbox().await;
    if !PathBuf::from(format!("/sys/fs/cgroup/memory/codepod/{}", f.id)).exists() {
        eprintln!("no memory cgroup here; the agent's RSS cannot be found this way");
        f.runtime.stop(&f.id).await.unwrap();
        return;
    }
    let mut slow = f.runtime.connect(&f.id).await.unwrap();
    let terminal = match slow
        .request(Message::OpenTerminal { cols: 80, rows: 24 })
        .await
        .unwrap()
    {
        Message::TerminalOpened { terminal } => terminal,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        slow.request(Message::Attach { terminal }).await.unwrap(),
        Message::Ok
    );
    slow.send(Message::Input {
        terminal,
        data: b"yes flood-flood-flood-flood\r".to_vec(),
    })
    .await
    .unwrap();
    // The client now reads nothing while `yes` writes as fast as it can, for longer than
    // the agent waits for a client that takes no bytes (10 s) before detaching it.
    let before = agent_rss_kib(&f.id);
    let mut peak = before;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(agent_rss_kib(&f.id));
    }
    eprintln!("agent RSS under the flood: {before} KiB before, {peak} KiB peak");
    // Bounded: scrollback 256 KiB, the client's outbox ≤ 8 MiB (flow control keeps it
    // nearer 1 MiB).
    assert!(
        peak < 64 * 1024,
        "agent RSS grew from {before} KiB to {peak} KiB"
    );
    // The agent still serves other clients, and the slow one learns it was detached.
    let mut other = f.runtime.connect(&f.id).await.unwrap();
    assert_eq!(other.request(Message::Ping).await.unwrap(), Message::Pong);
    let mut lagged = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, slow.next()).await {
        if let Message::Error {
            code: protocol::ErrorCode::Lagged,
            ..
        } = frame.message
        {
            lagged = true;
            break;
        }
    }
    assert!(lagged, "the slow client was told it fell behind");
    f.runtime.stop(&f.id).await.unwrap();
}

/// What the sandbox's proxy answers to `CONNECT target` (its status line).
async fn proxy_connect(client: &mut AgentClient, target: &str) -> String {
    run(
        client,
        &format!(
            "timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128; printf \"CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n\" {target} {target} >&3; head -1 <&3'"
        ),
    )
    .await
}

#[tokio::test]
async fn with_egress_the_proxy_still_refuses_the_host_private_ranges_and_metadata() {
    let f = sandbox_configured(|config| config.egress = true).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = f.runtime.connect(&f.id).await.unwrap();

    // Shells are pointed at the proxy; there is still no route of their own.
    let out = run(&mut client, "echo proxy=$https_proxy").await;
    assert!(out.contains("proxy=http://127.0.0.1:3128"), "{out}");
    let out = run(
        &mut client,
        "timeout 5 bash -c 'exec 3<>/dev/tcp/1.1.1.1/443'",
    )
    .await;
    assert_ne!(
        status_of(&out),
        0,
        "a direct connection left the sandbox: {out}"
    );

    for target in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("0.0.0.0:{port}"),
        "169.254.169.254:80".to_owned(),
        "[::ffff:a9fe:a9fe]:80".to_owned(),
        "10.0.0.1:80".to_owned(),
        "172.16.0.1:443".to_owned(),
        "192.168.0.1:80".to_owned(),
        "100.64.0.1:80".to_owned(),
        "[::1]:80".to_owned(),
        "[fd00::1]:80".to_owned(),
    ] {
        let out = proxy_connect(&mut client, &target).await;
        assert!(out.contains("403 Forbidden"), "CONNECT {target}: {out}");
    }
    // Plain HTTP in absolute form, to the host by name: refused too.
    let out = run(
        &mut client,
        &format!(
            "timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128; printf \"GET http://localhost:{port}/ HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n\" >&3; head -1 <&3'"
        ),
    )
    .await;
    assert!(out.contains("403 Forbidden"), "GET via the proxy: {out}");
    // Garbage is a 400, and the proxy goes on serving.
    let out = run(
        &mut client,
        "timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128; printf \"HELLO\\r\\n\\r\\n\" >&3; head -1 <&3'",
    )
    .await;
    assert!(out.contains("400 Bad Request"), "{out}");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener.accept())
            .await
            .is_err(),
        "something reached the host's loopback listener"
    );
    f.runtime.stop(&f.id).await.unwrap();
}

#[tokio::test]
async fn without_egress_there_is_no_proxy_either() {
    let f = sandbox().await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(&mut client, "echo proxy=[$https_proxy]").await;
    assert!(out.contains("proxy=[]"), "{out}");
    let out = run(
        &mut client,
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128'",
    )
    .await;
    assert_ne!(
        status_of(&out),
        0,
        "something listens on the proxy port: {out}"
    );
    f.runtime.stop(&f.id).await.unwrap();
}

/// Needs the package index (PyPI), which the setup needs anyway.
#[tokio::test]
async fn with_egress_pip_install_user_works_through_the_proxy() {
    let f = sandbox_configured(|config| config.egress = true).await;
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    let out = run(
        &mut client,
        "pip install --user --no-deps --disable-pip-version-check --quiet six==1.17.0 && python3 -c 'import six; print(\"at\", six.__file__)'",
    )
    .await;
    assert_eq!(status_of(&out), 0, "{out}");
    assert!(out.contains("at /home/user/.local/"), "{out}");
    f.runtime.stop(&f.id).await.unwrap();
}

/// Two servers on one machine (two data directories) share the cgroup hierarchy. One's
/// orphan cleanup must never remove the other's cgroups — least of all one it has just made
/// and not yet joined (its sandbox would then fail to start) — and still removes its own
/// leftovers, and cgroups that have been empty for long (their server and its directory
/// gone).
#[tokio::test]
async fn orphan_cleanup_touches_only_its_own_sandboxes() {
    let f = sandbox().await;
    let pids = PathBuf::from("/sys/fs/cgroup/pids/codepod");
    if !pids.join(f.id.as_str()).exists() {
        eprintln!("no cgroups here: nothing shared to protect");
        return;
    }
    // The other server, with a leftover of its own and nothing running.
    let other_root = tempfile::tempdir().unwrap();
    let other = LocalRuntime::new(LocalConfig::new(
        other_root.path().to_path_buf(),
        agent_bin(),
    ))
    .unwrap();
    let leftover = SandboxId::parse(&format!(
        "{:08x}-0000-4000-8000-00000000000a",
        std::process::id()
    ))
    .unwrap();
    std::fs::create_dir(other_root.path().join(leftover.as_str())).unwrap();
    std::fs::create_dir_all(pids.join(leftover.as_str())).unwrap();
    // A cgroup the first server has just made for a sandbox about to join it: empty.
    let starting = SandboxId::parse(&format!(
        "{:08x}-0000-4000-8000-00000000000b",
        std::process::id()
    ))
    .unwrap();
    std::fs::create_dir_all(pids.join(starting.as_str())).unwrap();
    // A cgroup left empty long ago by a server whose sandbox directory is gone too.
    let stale = SandboxId::parse(&format!(
        "{:08x}-0000-4000-8000-00000000000c",
        std::process::id()
    ))
    .unwrap();
    std::fs::create_dir_all(pids.join(stale.as_str())).unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(pids.join(stale.as_str()))
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    // The running sandbox's cgroup, made long ago too: it has processes, so it stays.
    std::fs::File::open(pids.join(f.id.as_str()))
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    assert_eq!(other.cleanup_orphans().await.unwrap(), 1);
    assert!(
        !pids.join(stale.as_str()).exists(),
        "a long-empty cgroup is gone"
    );
    assert!(!other_root.path().join(leftover.as_str()).exists());
    assert!(
        !pids.join(leftover.as_str()).exists(),
        "its own leftover cgroup is gone"
    );
    assert!(
        pids.join(starting.as_str()).exists(),
        "another server's new cgroup is left alone"
    );
    assert!(pids.join(f.id.as_str()).exists());
    let mut client = f.runtime.connect(&f.id).await.unwrap();
    assert!(run(&mut client, "echo alive").await.contains("alive"));

    // While the servers run, their housekeeping removes cgroups that went stale since.
    std::fs::create_dir_all(pids.join(stale.as_str())).unwrap();
    std::fs::File::open(pids.join(stale.as_str()))
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    f.runtime.maintain().await.unwrap();
    assert!(
        !pids.join(stale.as_str()).exists(),
        "a cgroup empty since long ago is gone"
    );
    assert!(pids.join(starting.as_str()).exists());
    assert!(pids.join(f.id.as_str()).exists());
    let _ = std::fs::remove_dir(pids.join(starting.as_str()));
}
