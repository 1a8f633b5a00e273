//! File operations through the real agent, and the symlink attacks they must withstand:
//! every operation on a path through a planted symlink is refused, and no host file outside
//! the workspace is read, written, moved or deleted.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

mod common;

use common::{Client, start_agent};
use protocol::{ErrorCode, Message};

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
        path: "src/pkg/mod.py".into(),
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
                path: "src/pkg/mod.py".into()
            })
            .await,
        Message::FileContent {
            path: "src/pkg/mod.py".into(),
            data: b"x = 1\n".to_vec()
        }
    );
    assert_eq!(
        client
            .request(Message::MakeDir {
                path: "empty/inner".into()
            })
            .await,
        Message::Ok
    );
    assert!(agent.workspace.join("empty/inner").is_dir());
    assert_eq!(
        client
            .request(Message::Move {
                from: "src".into(),
                to: "lib/code".into()
            })
            .await,
        Message::Ok
    );
    assert!(agent.workspace.join("lib/code/pkg/mod.py").is_file());
    assert_eq!(
        error_code(
            client
                .request(Message::Move {
                    from: "lib".into(),
                    to: "empty".into()
                })
                .await
        ),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        client.request(Message::Delete { path: "lib".into() }).await,
        Message::Ok
    );
    assert!(!agent.workspace.join("lib").exists());
    assert_eq!(
        error_code(
            client
                .request(Message::ReadFile {
                    path: "lib/code/pkg/mod.py".into()
                })
                .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        error_code(
            client
                .request(Message::ReadFile {
                    path: "../escape".into()
                })
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        error_code(
            client
                .request(Message::WriteFile {
                    path: "/etc/x".into(),
                    data: vec![]
                })
                .await
        ),
        ErrorCode::Forbidden
    );
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
                path: "filelink".into(),
                data: b"pwned".to_vec(),
            },
            "write through a file link",
        ),
        (
            Message::WriteFile {
                path: "dirlink/canary.txt".into(),
                data: b"pwned".to_vec(),
            },
            "write through a dir link",
        ),
        (
            Message::WriteFile {
                path: "relative/new.txt".into(),
                data: b"pwned".to_vec(),
            },
            "create through a relative link",
        ),
        (
            Message::ReadFile {
                path: "filelink".into(),
            },
            "read through a file link",
        ),
        (
            Message::ReadFile {
                path: "dirlink/canary.txt".into(),
            },
            "read through a dir link",
        ),
        (
            Message::MakeDir {
                path: "dirlink/made".into(),
            },
            "mkdir through a link",
        ),
        (
            Message::Delete {
                path: "dirlink/canary.txt".into(),
            },
            "delete through a link",
        ),
        (
            Message::Move {
                from: "dirlink/canary.txt".into(),
                to: "stolen.txt".into(),
            },
            "move out through a link",
        ),
        (
            Message::Move {
                from: "filelink".into(),
                to: "dirlink/moved".into(),
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
            client.request(Message::Delete { path: link.into() }).await,
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
        client
            .request(Message::Delete {
                path: "tree".into()
            })
            .await,
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
    move |message| matches!(message, Message::FileChanged { path: p, .. } if p == path)
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
            path: "made.txt".into(),
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
            path: "made.txt".into(),
        })
    })
    .await;
    assert!(
        seen.contains(&Message::FileRemoved {
            path: "made.txt".into()
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
                path == "kept.py",
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
    let Message::SnapshotResult { files } = client.request(Message::Snapshot).await else {
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
