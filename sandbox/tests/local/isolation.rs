//! Who the sandbox is and what it can see: never host root, a uid of its own, no host file it
//! should not read, no host path in its mount table, no kernel knob it can turn, no syscall
//! it does not need, no way to redirect the server's connection, and nothing of another
//! sandbox.

use super::*;

#[tokio::test]
async fn the_shell_runs_as_an_unprivileged_user_in_the_workspace() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let out = run(&mut shell, "echo \"$(id -un):$(id -u):$(pwd):$HOME:$TERM\"").await;
    assert!(
        out.contains("user:1000:/workspace:/home/user:xterm-256color"),
        "{out}"
    );
    let out = run(&mut shell, "python3 -c 'print(6*7)'").await;
    assert!(
        out.lines().any(|line| line.trim() == "42"),
        "python3 runs: {out}"
    );
    f.stop().await;
}

/// The attack: with the server as root, bwrap mapped the sandbox's user to host uid 0, so
/// every kernel check that compares uids (file owners, /proc/sys) saw root.
#[tokio::test]
async fn every_sandbox_process_is_an_unprivileged_host_uid_of_its_own() {
    assert!(as_root(), "run the sandbox tests as root, as CI does");
    let a = sandbox().await;
    // A second sandbox of the same server.
    let b_id = new_id();
    a.runtime.ensure(&b_id).await.unwrap();
    let uid_a = a
        .runtime
        .uid(&a.id)
        .await
        .expect("root leases each sandbox a uid");
    let uid_b = a
        .runtime
        .uid(&b_id)
        .await
        .expect("root leases each sandbox a uid");
    assert_ne!(uid_a, uid_b, "two sandboxes share a host uid");
    for uid in [uid_a, uid_b] {
        assert!(
            sandbox::local::uids::DEFAULT_UIDS.contains(&uid),
            "uid {uid} is outside the reserved range"
        );
    }
    // A shell running in the first, beside the agent.
    let mut shell = a.session().await;
    let _terminal = open_attached(&mut shell).await;
    let pids = a.runtime.pids(&a.id).await;
    assert!(pids.len() >= 3, "bwrap, the agent and a shell: {pids:?}");
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ids = |key: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .unwrap()
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        };
        assert_eq!(
            ids("Uid:"),
            vec![uid_a; 4],
            "pid {pid}: real, effective, saved, fs uid\n{status}"
        );
        assert_eq!(ids("Gid:"), vec![uid_a; 4], "pid {pid}\n{status}");
        assert_eq!(
            ids("Groups:"),
            Vec::<u32>::new(),
            "pid {pid} keeps supplementary groups"
        );
        // Inside its user namespace (bwrap's monitor stays outside), the sandbox's user
        // maps to that uid, seen from the host.
        let ns = |of: &str| std::fs::read_link(format!("/proc/{of}/ns/user")).unwrap();
        if ns(&pid.to_string()) == ns("self") {
            continue;
        }
        let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        assert!(
            map.lines()
                .all(|line| line.split_whitespace().nth(1) == Some(&uid_a.to_string())),
            "pid {pid} maps to another host uid: {map}"
        );
    }
    a.runtime.stop(&b_id).await.unwrap();
    a.stop().await;
}

/// The knobs under `/proc` that belong to the sandbox's own namespaces — its IPC limits and
/// its PID namespace's counters — which the kernel lets a namespace's owner set, and the
/// pressure-stall files (writing one only arms a poll trigger). Nothing else may be writable.
const OWN_KNOBS: [&str; 6] = [
    "/proc/sys/fs/mqueue/",
    "/proc/sys/kernel/msg",
    "/proc/sys/kernel/shm",
    "/proc/sys/kernel/sem",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/pressure/",
];

/// The attack: as host root the sandbox's user could write host sysctls (core_pattern with
/// a script of its own is host code execution).
#[tokio::test]
async fn no_host_wide_kernel_knob_under_proc_is_writable() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let out = run(
        &mut shell,
        "for f in /proc/sys/kernel/printk_ratelimit /proc/sys/kernel/core_pattern /proc/sys/kernel/hostname \
         /proc/sys/vm/overcommit_memory /proc/sys/fs/protected_symlinks /proc/sys/kernel/sysrq; do \
         v=$(cat $f); (printf %s \"$v\" > $f) 2>/dev/null && echo WROTE $f; done; \
         find /proc -path '/proc/[0-9]*' -prune -o -path /proc/self -prune -o -path /proc/thread-self -prune \
         -o -writable -print 2>/dev/null | sed 's/^/WRITABLE /'; echo checked",
    )
    .await;
    assert!(out.contains("checked"), "{out}");
    assert!(!out.contains("WROTE"), "a host sysctl was written:\n{out}");
    for line in out.lines() {
        if let Some(path) = line.trim().strip_prefix("WRITABLE ") {
            assert!(
                OWN_KNOBS.iter().any(|own| path.starts_with(own)
                    || path == "/proc/sys/kernel/auto_msgmni"
                    || path == "/proc/sys/kernel/pid_max"),
                "{path} is writable from the sandbox:\n{out}"
            );
        }
    }
    f.stop().await;
}

/// The attack: root-only host files under the read-only binds were readable (the sandbox's
/// user was root). Here the Python environment is a directory of the test's, with a root-only
/// file and folder beside a public file.
#[tokio::test]
async fn root_only_host_files_under_the_read_only_binds_are_unreadable() {
    use std::os::unix::fs::PermissionsExt;
    // Not under /tmp: the sandbox has a /tmp of its own, over it.
    let env = tempfile::tempdir_in("/var/tmp").unwrap();
    let set = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set(env.path(), 0o755);
    std::fs::write(env.path().join("public.txt"), "public-content").unwrap();
    std::fs::write(env.path().join("secret.txt"), "secret-content").unwrap();
    set(&env.path().join("secret.txt"), 0o600);
    std::fs::create_dir(env.path().join("private")).unwrap();
    std::fs::write(env.path().join("private/key"), "key-content").unwrap();
    set(&env.path().join("private"), 0o700);
    let path = env.path().to_path_buf();
    let f = sandbox_configured(|config| config.python_env = Some(path)).await;
    let mut shell = f.session().await;
    let dir = env.path().display();
    let out = run(
        &mut shell,
        &format!(
            "cat {dir}/public.txt; cat {dir}/secret.txt; cat {dir}/private/key; ls {dir}/private"
        ),
    )
    .await;
    assert!(out.contains("public-content"), "{out}");
    assert!(
        !out.contains("secret-content") && !out.contains("key-content"),
        "a root-only host file was read:\n{out}"
    );
    assert!(out.matches("Permission denied").count() >= 3, "{out}");
    // The host's own private keys likewise, where the host has them.
    if std::path::Path::new("/etc/ssl/private").exists() {
        let out = run(&mut shell, "ls /etc/ssl/private").await;
        assert_ne!(status_of(&out), 0, "{out}");
    }
    f.stop().await;
}

/// The attack: `/proc/self/mountinfo` showed the host path of the read-write bind (the way
/// to a core_pattern script) and of the agent binary.
#[tokio::test]
async fn the_mount_table_shows_no_host_path_the_sandbox_does_not_see_in_place() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let out = run(&mut shell, "cat /proc/self/mountinfo").await;
    let mut mounts = 0;
    for line in out.lines().filter(|line| line.contains(" - ")) {
        let (left, right) = line.split_once(" - ").unwrap();
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (root, point) = (fields[3], fields[4]);
        let fstype = right.split_whitespace().next().unwrap();
        mounts += 1;
        assert!(
            root == "/"
                || root == point
                || fstype == "devtmpfs"
                // bwrap's own root and the copies it makes of passwd, group and profile.
                || root == "/newroot"
                || root.starts_with("/bindfile"),
            "a mount shows a host path other than its own: {line}"
        );
    }
    assert!(mounts > 5, "{out}");
    for host in [
        f.root.path().to_path_buf(),
        agent_bin().parent().unwrap().to_path_buf(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ] {
        assert!(
            !out.contains(&*host.to_string_lossy()),
            "{} shows in the mount table:\n{out}",
            host.display()
        );
    }
    f.stop().await;
}

/// Calls Python can be made to make (ctypes), which Docker's and Flatpak's default profiles
/// deny: all of them worked before the filter (the user had no capabilities, but none is
/// needed for these), now `EPERM` (`clone3`: `ENOSYS`, so libc falls back to `clone`).
#[cfg(target_arch = "x86_64")]
#[tokio::test]
async fn kernel_interfaces_nobody_needs_for_python_are_denied_by_seccomp() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let script = r#"
# Each call's name and what it returned.
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def arg(a):
    return a if isinstance(a, (bytes, ctypes.Array)) else ctypes.c_long(a)
def call(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[arg(a) for a in args])
    print("CALL", name, "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "?"))
params = ctypes.create_string_buffer(120)
attr = ctypes.create_string_buffer(128)
attr[4] = 128
attr[40] = 0x60  # exclude_kernel, exclude_hv
call("keyctl", 250, 0, -3, 1)
call("add_key", 248, b"user", b"codepod", b"payload", 7, -3)
call("io_uring_setup", 425, 4, params)
call("userfaultfd", 323, 1)
call("perf_event_open", 298, attr, 0, -1, -1, 0)
call("bpf", 321, 0, 0, 0)
call("unshare", 272, 0x00020000)
call("setns", 308, 0, 0)
call("mount", 165, b"none", b"/tmp", b"tmpfs", 0, 0)
call("open_by_handle_at", 304, -100, 0, 0)
call("process_vm_readv", 310, 1, 0, 0, 0, 0, 0)
call("personality", 135, 0x0400000)
call("clone3", 435, 0, 0)
call("keyctl_x32", 0x40000000 | 250, 0, -3, 1)
call("personality_query", 135, 0xffffffff)
"#;
    let probe = model::WorkspacePath::parse("probe.py").unwrap();
    f.control()
        .await
        .write_file(&probe, script.as_bytes())
        .await
        .unwrap();
    let out = run(&mut shell, "python3 probe.py").await;
    let result = |name: &str| -> String {
        out.lines()
            .find_map(|line| line.trim().strip_prefix(&format!("CALL {name} ")))
            .unwrap_or_else(|| panic!("{name} was not tried:\n{out}"))
            .trim()
            .to_owned()
    };
    for name in [
        "keyctl",
        "add_key",
        "io_uring_setup",
        "userfaultfd",
        "perf_event_open",
        "bpf",
        "unshare",
        "setns",
        "mount",
        "open_by_handle_at",
        "process_vm_readv",
        "personality",
    ] {
        assert_eq!(result(name), "EPERM", "{name}:\n{out}");
    }
    assert_eq!(result("clone3"), "ENOSYS", "{out}");
    assert_eq!(result("keyctl_x32"), "ENOSYS", "{out}");
    // What programs do use still works.
    assert_eq!(result("personality_query"), "ok", "{out}");
    let out = run(&mut shell, "python3 -c 'import subprocess, threading; print(subprocess.run([\"echo\", \"forked\"], capture_output=True).stdout.decode().strip())'").await;
    assert!(out.contains("forked"), "{out}");
    f.stop().await;
}

/// The attack: `/run/codepod` was a host directory bound read-write, and the server
/// connected to `agent.sock` in it by path; a symlink swapped in gave the attacker's next
/// terminal a shell in another user's sandbox. Now there is nothing there to swap, and the
/// server's connection to each sandbox always lands in that sandbox.
#[tokio::test]
async fn the_agent_socket_cannot_be_redirected_from_inside() {
    let attacker = sandbox().await;
    let victim = new_id();
    attacker.runtime.ensure(&victim).await.unwrap();
    let mut in_victim = TerminalSession::open(attacker.runtime.connect(&victim).await.unwrap())
        .await
        .unwrap();
    run(&mut in_victim, "echo victim > /workspace/whoami").await;
    let mut shell = attacker.session().await;
    let out = run(
        &mut shell,
        &format!(
            "echo attacker > /workspace/whoami; \
             ln -s ../../{victim}/run/agent.sock /run/codepod/x && mv -T /run/codepod/x /run/codepod/agent.sock && echo SWAPPED; \
             ln -s ../../{victim}/agent.sock /run/x && echo LINKED; \
             ls -d /run/codepod 2>&1; echo tried"
        ),
    )
    .await;
    assert!(out.contains("tried"), "{out}");
    assert!(!out.contains("SWAPPED") && !out.contains("LINKED"), "{out}");
    // The server's next connection to the attacker's sandbox is the attacker's.
    let mut again = attacker.session().await;
    let out = run(&mut again, "cat /workspace/whoami").await;
    assert!(
        out.contains("attacker") && !out.contains("victim"),
        "the connection landed elsewhere: {out}"
    );
    // On the host, the sandbox's directory is the server's alone.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(attacker.host_dir()).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (0, 0o700));
    let mut names: Vec<String> = std::fs::read_dir(attacker.host_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["agent.sock", "group", "passwd", "profile", "seccomp.bpf"],
        "only what the server made"
    );
    attacker.runtime.stop(&victim).await.unwrap();
    attacker.stop().await;
}

#[tokio::test]
async fn numpy_pandas_and_scipy_are_importable_and_the_environment_is_read_only() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let out = run(
        &mut shell,
        "python3 -c 'import numpy, pandas, scipy; print(\"ok\", numpy.arange(3).sum())'",
    )
    .await;
    assert!(out.lines().any(|line| line.trim() == "ok 3"), "{out}");
    let out = run(&mut shell, "pip install --no-index nothing-here 2>&1 | tail -1; touch \"$(python3 -c 'import numpy, os; print(os.path.dirname(numpy.__file__))')/evil\"").await;
    assert_ne!(
        status_of(&out),
        0,
        "the shared environment is writable: {out}"
    );
    f.stop().await;
}

#[tokio::test]
async fn host_processes_files_and_environment_are_invisible() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let out = run(&mut shell, "ls /proc | grep -cE '^[0-9]+$'").await;
    let processes = number_in(&out);
    assert!(processes < 10, "sees {processes} processes: {out}");
    let out = run(&mut shell, "env").await;
    // The sandbox's own (where matplotlib's backend puts figures) is not the server's.
    let theirs = out
        .lines()
        .filter(|line| !line.starts_with("CODEPOD_PLOTS_DIR=/tmp/"))
        .collect::<Vec<_>>()
        .join("\n");
    for leak in ["CARGO", "RUST", "CODEPOD_", "POSTGRES", "DATABASE"] {
        assert!(
            !theirs.contains(leak),
            "the server's environment leaks {leak}: {out}"
        );
    }
    let out = run(&mut shell, "cat /etc/shadow").await;
    assert_ne!(status_of(&out), 0, "{out}");
    let host_root = f.root.path().display().to_string();
    let out = run(
        &mut shell,
        &format!("ls {host_root} /work /root /var/lib/postgresql"),
    )
    .await;
    assert_ne!(status_of(&out), 0, "{out}");
    assert!(
        out.matches("No such file or directory").count() >= 3,
        "{out}"
    );
    let out = run(&mut shell, "touch /usr/evil").await;
    assert_ne!(status_of(&out), 0, "the system is read-only: {out}");
    f.stop().await;
}

#[tokio::test]
async fn two_sandboxes_cannot_see_each_other() {
    let a = sandbox().await;
    let b = sandbox().await;
    let mut in_a = a.session().await;
    let mut in_b = b.session().await;
    run(&mut in_a, "echo secret-of-a > /workspace/mine.txt").await;
    let out = run(&mut in_b, "ls /workspace; cat /workspace/mine.txt").await;
    assert!(!out.contains("secret-of-a"), "{out}");
    assert_ne!(status_of(&out), 0);
    a.stop().await;
    b.stop().await;
}
