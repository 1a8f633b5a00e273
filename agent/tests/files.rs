//! File operations through the real agent, and the symlink attacks they must withstand:
//! every operation on a path through a planted symlink is refused, and no host file outside
//! the workspace is read, written, moved or deleted.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

mod common;

use common::{Client, p, start_agent};
use protocol::{ErrorCode, Message, Tag};

fn error_code(message: Message) -> ErrorCode {
    match message {
        Message::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn files_are_written_read_moved_and_deleted_inside_the_workspace() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    let write = Message::WriteFile {
        path: p("src/pkg/mod.py"),
        data: b"x = 1\n".to_vec(),
    };
    assert_eq!(client.request(write).await, Message::Ok);
    assert_eq!(
        std::fs::read(agent.workspace.join("src/pkg/mod.py")).unwrap(),
        b"x = 1\n"
    );
    assert_eq!(
        client
            .request(Message::ReadFile {
                path: p("src/pkg/mod.py")
            })
            .await,
        Message::FileContent {
            path: p("src/pkg/mod.py"),
            data: b"x = 1\n".to_vec()
        }
    );
    assert_eq!(
        client
            .request(Message::MakeDir {
                path: p("empty/inner")
            })
            .await,
        Message::Ok
    );
    assert!(agent.workspace.join("empty/inner").is_dir());
    assert_eq!(
        client
            .request(Message::Move {
                from: p("src"),
                to: p("lib/code")
            })
            .await,
        Message::Ok
    );
    assert!(agent.workspace.join("lib/code/pkg/mod.py").is_file());
    assert_eq!(
        error_code(
            client
                .request(Message::Move {
                    from: p("lib"),
                    to: p("empty")
                })
                .await
        ),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        client.request(Message::Delete { path: p("lib") }).await,
        Message::Ok
    );
    assert!(!agent.workspace.join("lib").exists());
    assert_eq!(
        error_code(
            client
                .request(Message::ReadFile {
                    path: p("lib/code/pkg/mod.py")
                })
                .await
        ),
        ErrorCode::NotFound
    );
    // Paths that would leave the workspace cannot even be decoded (a typed message cannot
    // carry them): a peer that sends one anyway gets an error and nothing is touched.
    for escape in ["../escape", "/etc/x"] {
        let payload = postcard::to_allocvec(&(escape, Vec::<u8>::new())).unwrap();
        let id = client.send_raw(Tag::WriteFile, &payload).await;
        assert_eq!(
            error_code(client.reply_to(id).await),
            ErrorCode::MalformedFrame,
            "{escape}"
        );
    }
    assert!(!agent.dir.path().join("escape").exists());
}

#[tokio::test]
async fn a_planted_symlink_cannot_make_any_operation_touch_a_file_outside() {
    let agent = start_agent().await;
    // Host canaries beside the workspace, as user code cannot reach them otherwise.
    let outside = agent.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let canary = outside.join("canary.txt");
    std::fs::write(&canary, b"precious").unwrap();
    // What user code would plant in its workspace.
    std::os::unix::fs::symlink(&outside, agent.workspace.join("dirlink")).unwrap();
    std::os::unix::fs::symlink(&canary, agent.workspace.join("filelink")).unwrap();
    std::os::unix::fs::symlink("../outside", agent.workspace.join("relative")).unwrap();

    let mut client = Client::connect(&agent).await;
    for (message, what) in [
        (
            Message::WriteFile {
                path: p("filelink"),
                data: b"pwned".to_vec(),
            },
            "write through a file link",
        ),
        (
            Message::WriteFile {
                path: p("dirlink/canary.txt"),
                data: b"pwned".to_vec(),
            },
            "write through a dir link",
        ),
        (
            Message::WriteFile {
                path: p("relative/new.txt"),
                data: b"pwned".to_vec(),
            },
            "create through a relative link",
        ),
        (
            Message::ReadFile {
                path: p("filelink"),
            },
            "read through a file link",
        ),
        (
            Message::ReadFile {
                path: p("dirlink/canary.txt"),
            },
            "read through a dir link",
        ),
        (
            Message::MakeDir {
                path: p("dirlink/made"),
            },
            "mkdir through a link",
        ),
        (
            Message::Delete {
                path: p("dirlink/canary.txt"),
            },
            "delete through a link",
        ),
        (
            Message::Move {
                from: p("dirlink/canary.txt"),
                to: p("stolen.txt"),
            },
            "move out through a link",
        ),
        (
            Message::Move {
                from: p("filelink"),
                to: p("dirlink/moved"),
            },
            "move in through a link",
        ),
    ] {
        let reply = client.request(message).await;
        assert_eq!(error_code(reply), ErrorCode::Forbidden, "{what}");
    }
    // Deleting the links removes the links only.
    for link in ["dirlink", "filelink", "relative"] {
        assert_eq!(
            client.request(Message::Delete { path: p(link) }).await,
            Message::Ok,
            "{link}"
        );
    }
    assert_eq!(std::fs::read(&canary).unwrap(), b"precious");
    let mut names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["canary.txt"]);
    assert!(!agent.workspace.join("stolen.txt").exists());
}

#[tokio::test]
async fn deleting_a_folder_does_not_follow_links_inside_it() {
    let agent = start_agent().await;
    let outside = agent.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), b"keep").unwrap();
    std::fs::create_dir_all(agent.workspace.join("tree/sub")).unwrap();
    std::os::unix::fs::symlink(&outside, agent.workspace.join("tree/sub/link")).unwrap();
    let mut client = Client::connect(&agent).await;
    assert_eq!(
        client.request(Message::Delete { path: p("tree") }).await,
        Message::Ok
    );
    assert!(!agent.workspace.join("tree").exists());
    assert_eq!(std::fs::read(outside.join("keep.txt")).unwrap(), b"keep");
}

/// Collects watch events until `done` says so (or 10 s pass); returns them all.
async fn events_until(
    client: &mut Client,
    mut done: impl FnMut(&[Message]) -> bool,
) -> Vec<Message> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done(&seen) {
        match tokio::time::timeout_at(deadline, client.next()).await {
            Ok(frame) => seen.push(frame.message),
            Err(_) => break,
        }
    }
    seen
}

fn changed(path: &str) -> impl Fn(&Message) -> bool + '_ {
    move |message| matches!(message, Message::FileChanged { path: p, .. } if p.as_str() == path)
}

#[tokio::test]
async fn changes_made_inside_the_workspace_are_announced_with_their_content() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    assert_eq!(client.request(Message::Watch).await, Message::Ok);

    std::fs::write(agent.workspace.join("made.txt"), b"hi\n").unwrap();
    let seen = events_until(&mut client, |seen| seen.iter().any(changed("made.txt"))).await;
    assert!(
        seen.contains(&Message::FileChanged {
            path: p("made.txt"),
            is_dir: false,
            data: Some(b"hi\n".to_vec())
        }),
        "{seen:?}"
    );

    // A new folder tree, made faster than a watch can be added for it.
    std::fs::create_dir_all(agent.workspace.join("a/b")).unwrap();
    std::fs::write(agent.workspace.join("a/b/c.txt"), b"deep").unwrap();
    let seen = events_until(&mut client, |seen| seen.iter().any(changed("a/b/c.txt"))).await;
    assert!(
        seen.iter().any(changed("a")) && seen.iter().any(changed("a/b")),
        "{seen:?}"
    );

    std::fs::remove_file(agent.workspace.join("made.txt")).unwrap();
    let seen = events_until(&mut client, |seen| {
        seen.contains(&Message::FileRemoved {
            path: p("made.txt"),
        })
    })
    .await;
    assert!(
        seen.contains(&Message::FileRemoved {
            path: p("made.txt")
        }),
        "{seen:?}"
    );
}

#[tokio::test]
async fn caches_installed_packages_and_codepodignore_entries_are_not_announced() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    assert_eq!(client.request(Message::Watch).await, Message::Ok);
    let ws = &agent.workspace;
    std::fs::write(ws.join(".codepodignore"), b"*.log\nbuild/\n").unwrap();
    events_until(&mut client, |seen| {
        seen.iter().any(changed(".codepodignore"))
    })
    .await;

    std::fs::create_dir_all(ws.join("__pycache__")).unwrap();
    std::fs::write(ws.join("__pycache__/m.cpython-311.pyc"), b"x").unwrap();
    std::fs::write(ws.join("top.pyc"), b"x").unwrap();
    std::fs::create_dir_all(ws.join(".venv/lib/site-packages/pkg")).unwrap();
    std::fs::write(ws.join(".venv/lib/site-packages/pkg/__init__.py"), b"x").unwrap();
    std::fs::create_dir_all(ws.join("build")).unwrap();
    std::fs::write(ws.join("build/out.bin"), b"x").unwrap();
    std::fs::write(ws.join("run.log"), b"x").unwrap();
    // A file that is not ignored, written last: once it is announced, the others had time.
    std::fs::write(ws.join("kept.py"), b"x").unwrap();
    let seen = events_until(&mut client, |seen| seen.iter().any(changed("kept.py"))).await;
    assert!(seen.iter().any(changed("kept.py")), "{seen:?}");
    for message in &seen {
        if let Message::FileChanged { path, .. } | Message::FileRemoved { path } = message {
            assert!(
                path.as_str() == "kept.py",
                "an ignored path was announced: {path} in {seen:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_snapshot_lists_files_with_sizes_and_hashes_and_skips_links_and_ignored_paths() {
    let agent = start_agent().await;
    let root = &agent.workspace;
    std::fs::create_dir_all(root.join("src/__pycache__")).unwrap();
    std::fs::write(root.join("src/main.py"), b"print('hi')\n").unwrap();
    std::fs::write(root.join("src/__pycache__/main.pyc"), b"\0\0").unwrap();
    std::fs::write(root.join("empty.txt"), b"").unwrap();
    std::fs::write(root.join(".codepodignore"), b"data/\n").unwrap();
    std::fs::create_dir(root.join("data")).unwrap();
    std::fs::write(root.join("data/big.csv"), b"1,2\n").unwrap();
    // A link to a host file outside: never listed, never read.
    let outside = agent.dir.path().join("secret.txt");
    std::fs::write(&outside, b"host secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link.txt")).unwrap();

    let mut client = Client::connect(&agent).await;
    let Message::SnapshotResult { files, .. } = client.request(Message::Snapshot).await else {
        panic!("no snapshot");
    };
    let listed: Vec<(&str, bool, u64, &str)> = files
        .iter()
        .map(|f| (f.path.as_str(), f.is_dir, f.size, f.hash.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (
                ".codepodignore",
                false,
                6,
                "c5049c183f87267ff36ee98b52517e1f78670639f3a060baa89d4093a555f59b"
            ),
            (
                "empty.txt",
                false,
                0,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
            ("src", true, 0, ""),
            (
                "src/main.py",
                false,
                12,
                "caf026f25d7140209f98072605307a438914b9ce6f3c14b23d15d9667241de52"
            ),
        ]
    );
}

/// The attack: a FIFO where a file was expected hung the agent (opening it for reading or
/// writing waits for the other end, for ever), and with it the connection's requests. Now
/// anything but a regular file is refused at once.
#[tokio::test]
async fn a_fifo_where_a_file_is_expected_is_refused_never_waited_on() {
    let agent = start_agent().await;
    let fifo = agent.workspace.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut client = Client::connect(&agent).await;
    let read = client.request(Message::ReadFile { path: p("pipe") }).await;
    assert_eq!(error_code(read), ErrorCode::Forbidden);
    let write = client
        .request(Message::WriteFile {
            path: p("pipe"),
            data: b"x".to_vec(),
        })
        .await;
    assert_ne!(write, Message::Ok, "a write into a FIFO succeeded");
    // The snapshot does not list it (nor read it), says it is there, and the connection
    // goes on.
    match client.request(Message::Snapshot).await {
        Message::SnapshotResult {
            files, unlisted, ..
        } => {
            assert!(
                files.iter().all(|file| file.path.as_str() != "pipe"),
                "{files:?}"
            );
            assert_eq!(unlisted, [p("pipe")]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.request(Message::Ping).await, Message::Pong);
    // The watcher too: a file swapped for a FIFO over and over while it reports changes,
    // and still it reports the next real change.
    assert_eq!(client.request(Message::Watch).await, Message::Ok);
    let ws = agent.workspace.clone();
    let swapper = std::thread::spawn(move || {
        for n in 0..200 {
            let target = ws.join("swapped");
            let _ = std::fs::remove_file(&target);
            if n % 2 == 0 {
                let _ = std::fs::write(&target, b"data");
            } else {
                let _ = std::process::Command::new("mkfifo").arg(&target).status();
            }
        }
    });
    swapper.join().unwrap();
    std::fs::write(agent.workspace.join("after.txt"), b"still watching").unwrap();
    let seen = events_until(&mut client, |seen| seen.iter().any(changed("after.txt"))).await;
    assert!(
        seen.iter().any(changed("after.txt")),
        "the watcher hung: {seen:?}"
    );
}

/// The attack: a burst of changes faster than the watching client read ended the watch for
/// good (version 1 sent an error and stopped), so nothing made in the sandbox afterwards was
/// ever saved. Now the client hears how many it missed, and the watch goes on.
#[tokio::test]
async fn a_watch_that_falls_behind_a_burst_is_told_so_and_goes_on() {
    let agent = start_agent().await;
    let mut client = Client::connect(&agent).await;
    assert_eq!(client.request(Message::Watch).await, Message::Ok);
    // 3000 files of 8 KiB while the client reads nothing: more than the connection's
    // outgoing bound (8 MiB) and the watcher's queue (1024 changes) hold.
    let content = vec![b'x'; 8 * 1024];
    for n in 0..3000 {
        std::fs::write(agent.workspace.join(format!("burst-{n}.txt")), &content).unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mut missed = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while missed.is_none() {
        let frame = tokio::time::timeout_at(deadline, client.next())
            .await
            .expect("the lag is reported");
        if let Message::WatchLagged { missed: n } = frame.message {
            missed = Some(n);
        }
    }
    assert!(missed.is_some_and(|n| n > 0), "{missed:?}");
    std::fs::write(agent.workspace.join("after-burst.txt"), b"later").unwrap();
    let seen = events_until(&mut client, |seen| {
        seen.iter().any(changed("after-burst.txt"))
    })
    .await;
    assert!(
        seen.iter().any(changed("after-burst.txt")),
        "the watch ended with the lag: {} events, none for the later file",
        seen.len()
    );
}
