//! A sandbox's life on the host: replaced when its agent dies, gone without a trace when
//! stopped, its leftovers (and only its own) removed after a crash, and its containment
//! reported.

use super::*;

/// Where this machine's sandbox cgroups are (the pids controller's, on cgroup v1).
fn sandbox_cgroups() -> PathBuf {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup/codepod")
    } else {
        PathBuf::from("/sys/fs/cgroup/pids/codepod")
    }
}

#[tokio::test]
async fn a_killed_agent_is_replaced_by_the_next_ensure() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let terminal = open_attached(&mut shell).await;
    // The shell's parent is the agent.
    shell
        .sender
        .input(terminal, b"kill -9 $PPID\r")
        .await
        .unwrap();
    while let Some(Ok(_)) = shell.events.next().await {}
    f.runtime.ensure(&f.id).await.unwrap();
    f.control().await.ping().await.unwrap();
    f.stop().await;
    assert!(f.runtime.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn stop_removes_the_sandbox_its_cgroup_and_its_host_directory() {
    let f = sandbox().await;
    assert_eq!(f.runtime.list().await.unwrap(), std::slice::from_ref(&f.id));
    let pids = f.runtime.pids(&f.id).await;
    assert!(!pids.is_empty());
    f.stop().await;
    assert!(f.runtime.connect(&f.id).await.is_err());
    assert!(!f.host_dir().exists());
    assert!(!sandbox_cgroups().join(f.id.as_str()).exists());
    for controller in ["memory", "cpu"] {
        let v1 = PathBuf::from(format!("/sys/fs/cgroup/{controller}/codepod"));
        assert!(!v1.join(f.id.as_str()).exists(), "{controller}");
    }
    // None of its processes is left running; the last of them are reaped moments later.
    for pid in pids {
        let status = format!("/proc/{pid}/status");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Ok(text) = std::fs::read_to_string(&status) {
            assert!(
                text.lines()
                    .any(|line| line.starts_with("State:") && line.contains("Z (zombie)")),
                "process {pid} of the stopped sandbox still runs:\n{text}"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "zombie {pid} is never reaped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    f.stop().await;
}

#[tokio::test]
async fn the_containment_in_force_is_reported() {
    let f = sandbox().await;
    let containment = f.runtime.containment();
    assert!(containment.starts);
    let layers = containment.layers.join("; ");
    for layer in ["seccomp", "cgroup v", "read-only root"] {
        assert!(layers.contains(layer), "{layers}");
    }
    if as_root() {
        assert!(layers.contains("a host uid per sandbox"), "{layers}");
        assert!(containment.missing.is_empty(), "{:?}", containment.missing);
    }
    // A machine without cgroups (a root with none mounted): refused unless opted in.
    let root = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(root.path().to_path_buf(), agent_bin());
    config.cgroup_root = root.path().join("no-cgroups-here");
    let uncontained = LocalRuntime::new(config.clone()).unwrap();
    assert!(!uncontained.containment().starts);
    let refused = uncontained.ensure(&new_id()).await.unwrap_err();
    assert!(
        matches!(refused, sandbox::Error::Uncontained(_)),
        "{refused}"
    );
    config.allow_uncontained = true;
    let allowed = LocalRuntime::new(config).unwrap();
    let containment = allowed.containment();
    assert!(containment.starts);
    assert!(
        containment
            .missing
            .iter()
            .any(|gap| gap.contains("no cgroups")),
        "{:?}",
        containment.missing
    );
    f.stop().await;
}

/// Two servers on one machine (two data directories) share the cgroup hierarchy. One's
/// orphan cleanup must never remove the other's cgroups — least of all one it has just made
/// and not yet joined (its sandbox would then fail to start) — and still removes its own
/// leftovers, and cgroups that have been empty for long (their server and its directory
/// gone).
#[tokio::test]
async fn orphan_cleanup_touches_only_its_own_sandboxes() {
    let f = sandbox().await;
    let pids = sandbox_cgroups();
    assert!(
        pids.join(f.id.as_str()).exists(),
        "the sandbox has a cgroup"
    );
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
    let mut shell = f.session().await;
    assert!(run(&mut shell, "echo alive").await.contains("alive"));

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
