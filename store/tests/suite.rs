//! One test suite, run against SQLite and against a real PostgreSQL.
//!
//! Postgres: `CODEPOD_TEST_POSTGRES_URL` (default `postgres://codepod_test:codepod_test@127.0.0.1:5432/postgres`, the role
//! scripts/services.sh creates)
//! names a server where each test creates a fresh database `codepod_test_<uuid>`; the test
//! command drops leftovers from earlier runs before it starts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "the suite's bodies are tests run through a macro; a panic is a failure"
)]

use std::sync::Arc;

use model::{FileKind, Language, Limits, UserId, WorkspaceId, WorkspacePath};
use store::{
    Applied, EnvironmentRecord, Error, Expect, Limit, NewWorkspace, SandboxWrite, SessionRecord,
    Store, Taken, UserRecord, WriteFile,
};
use uuid::Uuid;

struct Fresh {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/codepod.db", dir.path().display());
    Fresh {
        store: store::connect(&url).await.unwrap(),
        _dir: Some(dir),
    }
}

async fn postgres() -> Fresh {
    use sqlx::Connection;
    let admin = std::env::var("CODEPOD_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        "postgres://codepod_test:codepod_test@127.0.0.1:5432/postgres".to_owned()
    });
    let name = format!("codepod_test_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL is running");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let store = store::connect(&format!("{base}/{name}")).await.unwrap();
    Fresh { store, _dir: None }
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test(super::sqlite().await.store).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $test() { super::$test(super::postgres().await.store).await; })*
        }
    };
}

suite!(
    a_workspaces_packages_are_kept_replaced_and_go_with_it,
    users_are_stored_and_usernames_are_unique_but_emails_not,
    sessions_expire_when_idle_or_past_their_absolute_lifetime,
    deleting_other_sessions_keeps_the_current_one,
    workspace_names_are_unique_per_owner_only,
    another_owners_workspace_is_not_found_by_any_operation,
    workspaces_per_user_are_limited,
    a_new_workspace_holds_its_seed_files,
    writes_create_parents_and_bump_the_version,
    a_stale_write_is_a_conflict_carrying_the_current_version,
    concurrent_writes_with_one_base_version_let_exactly_one_win,
    binary_content_round_trips_byte_exact,
    file_and_workspace_size_limits_hold,
    folders_are_made_once_and_files_cannot_hold_children,
    moving_a_folder_moves_its_subtree,
    a_folder_cannot_move_into_itself_or_onto_an_existing_path,
    deleting_a_folder_deletes_everything_inside,
    deleting_a_user_deletes_their_sessions_workspaces_and_files,
    sandbox_changes_apply_in_one_batch_each_refused_alone,
    sandbox_changes_that_name_a_version_never_undo_a_newer_save,
);

const NOW: i64 = 1_700_000_000_000;

fn path(text: &str) -> WorkspacePath {
    WorkspacePath::parse(text).unwrap()
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    let record = UserRecord {
        id: UserId(Uuid::new_v4()),
        username: name.to_owned(),
        email: format!("{name}@example.org"),
        password_hash: "$argon2id$fake".to_owned(),
        created_at: NOW,
        updated_at: NOW,
    };
    store.create_user(&record).await.unwrap();
    record.id
}

async fn workspace(store: &Arc<dyn Store>, owner: UserId, name: &str) -> WorkspaceId {
    let new = NewWorkspace {
        owner_id: owner,
        name: name.to_owned(),
        language: Language::Python,
        seed: vec![(path("main.py"), b"print('hello')\n".to_vec())],
    };
    store
        .create_workspace(&new, &Limits::default(), NOW)
        .await
        .unwrap()
        .id
}

async fn write(
    store: &Arc<dyn Store>,
    owner: UserId,
    ws: WorkspaceId,
    at: &str,
    content: &[u8],
    base: Option<i64>,
) -> Result<model::FileEntry, Error> {
    let at = path(at);
    store
        .write_file(
            owner,
            ws,
            WriteFile {
                path: &at,
                content,
                base_version: base,
            },
            &Limits::default(),
            NOW,
        )
        .await
}

async fn users_are_stored_and_usernames_are_unique_but_emails_not(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let found = store.user_by_username("ada").await.unwrap().unwrap();
    assert_eq!(found.id, ada);
    assert_eq!(
        store.user_by_id(ada).await.unwrap().unwrap().email,
        "ada@example.org"
    );
    assert!(store.user_by_username("nobody").await.unwrap().is_none());
    assert_eq!(
        store
            .users_by_email("ada@example.org", 8)
            .await
            .unwrap()
            .iter()
            .map(|user| user.id)
            .collect::<Vec<_>>(),
        [ada]
    );

    let mut twin = found.clone();
    twin.id = UserId(Uuid::new_v4());
    twin.email = "other@example.org".into();
    assert!(matches!(
        store.create_user(&twin).await,
        Err(Error::Taken(Taken::Username))
    ));
    // An address may have several accounts: sign-up must not reveal that one has it.
    twin.username = "other".into();
    twin.email = "ada@example.org".into();
    store.create_user(&twin).await.unwrap();
    assert_eq!(
        store
            .users_by_email("ada@example.org", 8)
            .await
            .unwrap()
            .len(),
        2
    );

    store
        .set_password_hash(ada, "$argon2id$new", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.user_by_id(ada).await.unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
}

async fn a_workspaces_packages_are_kept_replaced_and_go_with_it(store: Arc<dyn Store>) {
    let owner = user(&store, "packager").await;
    let ws = workspace(&store, owner, "data").await;
    assert_eq!(store.environment(ws).await.unwrap(), None);
    assert_eq!(store.environment_summary(ws).await.unwrap(), None);
    let first = EnvironmentRecord {
        archive: (0..=255u8).cycle().take(100_000).collect(),
        signature: "a".repeat(64),
        packages: vec!["six==1.17.0".into(), "idna==3.10".into()],
        updated_at: 10,
    };
    store.put_environment(ws, &first).await.unwrap();
    assert_eq!(store.environment(ws).await.unwrap(), Some(first.clone()));
    let summary = store.environment_summary(ws).await.unwrap().unwrap();
    assert_eq!(summary.size, 100_000);
    assert_eq!(summary.packages, first.packages);
    let second = EnvironmentRecord {
        archive: vec![1, 2, 3],
        signature: "b".repeat(64),
        packages: Vec::new(),
        updated_at: 20,
    };
    store.put_environment(ws, &second).await.unwrap();
    assert_eq!(store.environment(ws).await.unwrap(), Some(second.clone()));
    store.delete_environment(ws).await.unwrap();
    store.delete_environment(ws).await.unwrap();
    assert_eq!(store.environment(ws).await.unwrap(), None);
    // Kept with the workspace, gone with it; none for a workspace that does not exist.
    store.put_environment(ws, &second).await.unwrap();
    store.delete_workspace(owner, ws).await.unwrap();
    assert_eq!(store.environment(ws).await.unwrap(), None);
    assert!(matches!(
        store.put_environment(ws, &second).await,
        Err(Error::NotFound)
    ));
}

fn session(user: UserId, token: u8, expires_at: i64) -> SessionRecord {
    SessionRecord {
        token_hash: vec![token; 32],
        user_id: user,
        created_at: NOW,
        last_seen_at: NOW,
        expires_at,
        user_agent: Some("test".into()),
    }
}

async fn sessions_expire_when_idle_or_past_their_absolute_lifetime(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    store
        .create_session(&session(ada, 1, NOW + 10_000))
        .await
        .unwrap();
    let idle = 1_000;
    let (found, owner) = store
        .session(&[1; 32], NOW + 500, idle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.user_id, owner.id), (ada, ada));
    // Idle for longer than allowed.
    assert!(
        store
            .session(&[1; 32], NOW + 1_500, idle)
            .await
            .unwrap()
            .is_none()
    );
    // Seen recently, so alive again; but never past the absolute expiry.
    store.touch_session(&[1; 32], NOW + 9_900).await.unwrap();
    assert!(
        store
            .session(&[1; 32], NOW + 9_950, idle)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session(&[1; 32], NOW + 10_000, idle)
            .await
            .unwrap()
            .is_none()
    );
    store.delete_session(&[1; 32]).await.unwrap();
    assert!(
        store
            .session(&[1; 32], NOW + 9_950, idle)
            .await
            .unwrap()
            .is_none()
    );
}

async fn deleting_other_sessions_keeps_the_current_one(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    for token in 1..=3 {
        store
            .create_session(&session(ada, token, NOW + 10_000))
            .await
            .unwrap();
    }
    assert_eq!(
        store.delete_sessions_of(ada, Some(&[2; 32])).await.unwrap(),
        2
    );
    assert!(
        store
            .session(&[2; 32], NOW, 10_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session(&[1; 32], NOW, 10_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.delete_sessions_of(ada, None).await.unwrap(), 1);
}

async fn workspace_names_are_unique_per_owner_only(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let bob = user(&store, "bob").await;
    workspace(&store, ada, "demo").await;
    workspace(&store, bob, "demo").await;
    let again = NewWorkspace {
        owner_id: ada,
        name: "demo".into(),
        language: Language::Python,
        seed: vec![],
    };
    assert!(matches!(
        store
            .create_workspace(&again, &Limits::default(), NOW)
            .await,
        Err(Error::Taken(Taken::WorkspaceName))
    ));
    let other = workspace(&store, ada, "other").await;
    assert!(matches!(
        store.rename_workspace(ada, other, "demo", NOW).await,
        Err(Error::Taken(Taken::WorkspaceName))
    ));
    let renamed = store
        .rename_workspace(ada, other, "renamed", NOW + 5)
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.updated_at),
        ("renamed", NOW + 5)
    );
    assert_eq!(store.list_workspaces(ada).await.unwrap().len(), 2);
}

async fn another_owners_workspace_is_not_found_by_any_operation(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let eve = user(&store, "eve").await;
    let ws = workspace(&store, ada, "private").await;
    let main = path("main.py");
    let limits = Limits::default();
    assert!(store.workspace(eve, ws).await.unwrap().is_none());
    assert!(store.list_workspaces(eve).await.unwrap().is_empty());
    assert!(matches!(
        store.rename_workspace(eve, ws, "mine", NOW).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.touch_workspace(eve, ws, NOW).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.list_files(eve, ws).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.read_file(eve, ws, &main).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        write(&store, eve, ws, "main.py", b"pwned", Some(1)).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        write(&store, eve, ws, "new.py", b"pwned", None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.make_dir(eve, ws, &path("d"), &limits, NOW).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store
            .move_path(eve, ws, &main, &path("x.py"), &limits, NOW)
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_path(eve, ws, &main, NOW).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(store.usage(eve, ws).await, Err(Error::NotFound)));
    assert!(matches!(
        store.delete_workspace(eve, ws).await,
        Err(Error::NotFound)
    ));
    // Nothing changed for the owner.
    let file = store.read_file(ada, ws, &main).await.unwrap();
    assert_eq!(
        (file.content.as_slice(), file.entry.version),
        (&b"print('hello')\n"[..], 1)
    );
}

async fn workspaces_per_user_are_limited(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let limits = Limits {
        max_workspaces_per_user: 2,
        ..Limits::default()
    };
    for name in ["one", "two"] {
        let new = NewWorkspace {
            owner_id: ada,
            name: name.into(),
            language: Language::Python,
            seed: vec![],
        };
        store.create_workspace(&new, &limits, NOW).await.unwrap();
    }
    let third = NewWorkspace {
        owner_id: ada,
        name: "three".into(),
        language: Language::Python,
        seed: vec![],
    };
    assert!(matches!(
        store.create_workspace(&third, &limits, NOW).await,
        Err(Error::Limit(Limit::Workspaces))
    ));
}

async fn a_new_workspace_holds_its_seed_files(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let files = store.list_files(ada, ws).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path.as_str(), "main.py");
    assert_eq!(files[0].kind, FileKind::File);
    assert_eq!(files[0].hash, store::content_hash(b"print('hello')\n"));
}

async fn writes_create_parents_and_bump_the_version(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let created = write(&store, ada, ws, "pkg/sub/mod.py", b"x = 1\n", None)
        .await
        .unwrap();
    assert_eq!((created.version, created.size), (1, 6));
    let listed: Vec<_> = store
        .list_files(ada, ws)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.path.to_string(), e.kind))
        .collect();
    assert_eq!(
        listed,
        [
            ("main.py".to_owned(), FileKind::File),
            ("pkg".to_owned(), FileKind::Dir),
            ("pkg/sub".to_owned(), FileKind::Dir),
            ("pkg/sub/mod.py".to_owned(), FileKind::File),
        ]
    );
    let updated = write(&store, ada, ws, "pkg/sub/mod.py", b"x = 2\n", Some(1))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    let read = store
        .read_file(ada, ws, &path("pkg/sub/mod.py"))
        .await
        .unwrap();
    assert_eq!(
        (read.content.as_slice(), read.entry.version),
        (&b"x = 2\n"[..], 2)
    );
}

async fn a_stale_write_is_a_conflict_carrying_the_current_version(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    write(&store, ada, ws, "main.py", b"v2", Some(1))
        .await
        .unwrap();
    assert!(matches!(
        write(&store, ada, ws, "main.py", b"stale", Some(1)).await,
        Err(Error::VersionConflict { current: Some(2) })
    ));
    // Creating over an existing file is a conflict too, never a silent overwrite.
    assert!(matches!(
        write(&store, ada, ws, "main.py", b"new", None).await,
        Err(Error::VersionConflict { current: Some(2) })
    ));
    assert!(matches!(
        write(&store, ada, ws, "gone.py", b"x", Some(3)).await,
        Err(Error::VersionConflict { current: None })
    ));
    assert_eq!(
        store
            .read_file(ada, ws, &path("main.py"))
            .await
            .unwrap()
            .content,
        b"v2"
    );
}

async fn concurrent_writes_with_one_base_version_let_exactly_one_win(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let content = format!("writer {i}");
            write(&store, ada, ws, "main.py", content.as_bytes(), Some(1)).await
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(entry) => {
                assert_eq!(entry.version, 2);
                wins += 1;
            }
            Err(Error::VersionConflict { current: Some(2) }) => conflicts += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 7));
}

async fn binary_content_round_trips_byte_exact(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 0xff, 0xfe]).collect();
    write(&store, ada, ws, "data.bin", &bytes, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .read_file(ada, ws, &path("data.bin"))
            .await
            .unwrap()
            .content,
        bytes
    );
    write(&store, ada, ws, "empty", b"", None).await.unwrap();
    assert_eq!(
        store
            .read_file(ada, ws, &path("empty"))
            .await
            .unwrap()
            .content,
        b""
    );
}

async fn file_and_workspace_size_limits_hold(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let limits = Limits {
        max_file_bytes: 10,
        max_workspace_bytes: 40,
        max_files_per_workspace: 4,
        ..Limits::default()
    };
    let put = |at: &'static str, content: &'static [u8]| {
        let store = store.clone();
        async move {
            let at = path(at);
            store
                .write_file(
                    ada,
                    ws,
                    WriteFile {
                        path: &at,
                        content,
                        base_version: None,
                    },
                    &limits,
                    NOW,
                )
                .await
        }
    };
    assert!(matches!(
        put("big.txt", b"12345678901").await,
        Err(Error::Limit(Limit::FileBytes))
    ));
    put("a.txt", b"1234567890").await.unwrap();
    put("b.txt", b"1234567890").await.unwrap();
    // main.py (15 bytes) + 20 = 35; 10 more would make 45 > 40.
    assert!(matches!(
        put("c.txt", b"1234567890").await,
        Err(Error::Limit(Limit::WorkspaceBytes))
    ));
    put("c.txt", b"1").await.unwrap();
    assert!(matches!(
        put("d.txt", b"1").await,
        Err(Error::Limit(Limit::WorkspaceFiles))
    ));
    assert!(matches!(
        store.make_dir(ada, ws, &path("dir"), &limits, NOW).await,
        Err(Error::Limit(Limit::WorkspaceFiles))
    ));
}

async fn folders_are_made_once_and_files_cannot_hold_children(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let limits = Limits::default();
    let made = store
        .make_dir(ada, ws, &path("a/b"), &limits, NOW)
        .await
        .unwrap();
    assert_eq!(made.kind, FileKind::Dir);
    assert!(matches!(
        store.make_dir(ada, ws, &path("a/b"), &limits, NOW).await,
        Err(Error::Exists(_))
    ));
    assert!(matches!(
        store
            .make_dir(ada, ws, &path("main.py/x"), &limits, NOW)
            .await,
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        write(&store, ada, ws, "main.py/x.py", b"", None).await,
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        write(&store, ada, ws, "a", b"", Some(1)).await,
        Err(Error::WrongKind { .. })
    ));
}

async fn moving_a_folder_moves_its_subtree(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let limits = Limits::default();
    write(&store, ada, ws, "src/app/main.py", b"m", None)
        .await
        .unwrap();
    write(&store, ada, ws, "src/util.py", b"u", None)
        .await
        .unwrap();
    write(&store, ada, ws, "srcfile.py", b"s", None)
        .await
        .unwrap();
    store
        .move_path(ada, ws, &path("src"), &path("lib/code"), &limits, NOW)
        .await
        .unwrap();
    let paths: Vec<_> = store
        .list_files(ada, ws)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path.to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "lib",
            "lib/code",
            "lib/code/app",
            "lib/code/app/main.py",
            "lib/code/util.py",
            "main.py",
            "srcfile.py"
        ]
    );
    assert_eq!(
        store
            .read_file(ada, ws, &path("lib/code/app/main.py"))
            .await
            .unwrap()
            .content,
        b"m"
    );
    // A file rename keeps its content and version.
    let moved = store
        .move_path(ada, ws, &path("main.py"), &path("app.py"), &limits, NOW)
        .await
        .unwrap();
    assert_eq!((moved.path.as_str(), moved.version), ("app.py", 1));
    assert!(matches!(
        store.read_file(ada, ws, &path("main.py")).await,
        Err(Error::NotFound)
    ));
}

async fn a_folder_cannot_move_into_itself_or_onto_an_existing_path(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    let limits = Limits::default();
    write(&store, ada, ws, "a/x.py", b"x", None).await.unwrap();
    assert!(matches!(
        store
            .move_path(ada, ws, &path("a"), &path("a/b"), &limits, NOW)
            .await,
        Err(Error::MoveIntoSelf)
    ));
    assert!(matches!(
        store
            .move_path(ada, ws, &path("a"), &path("main.py"), &limits, NOW)
            .await,
        Err(Error::Exists(_))
    ));
    assert!(matches!(
        store
            .move_path(ada, ws, &path("nope"), &path("b"), &limits, NOW)
            .await,
        Err(Error::NotFound)
    ));
    assert!(store.read_file(ada, ws, &path("a/x.py")).await.is_ok());
}

async fn deleting_a_folder_deletes_everything_inside(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    write(&store, ada, ws, "d/e/f.py", b"f", None)
        .await
        .unwrap();
    write(&store, ada, ws, "de.py", b"keep", None)
        .await
        .unwrap();
    assert_eq!(
        store.delete_path(ada, ws, &path("d"), NOW).await.unwrap(),
        3
    );
    let paths: Vec<_> = store
        .list_files(ada, ws)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path.to_string())
        .collect();
    assert_eq!(paths, ["de.py", "main.py"]);
    assert!(matches!(
        store.delete_path(ada, ws, &path("d"), NOW).await,
        Err(Error::NotFound)
    ));
}

async fn deleting_a_user_deletes_their_sessions_workspaces_and_files(store: Arc<dyn Store>) {
    let ada = user(&store, "ada").await;
    let ws = workspace(&store, ada, "demo").await;
    store
        .create_session(&session(ada, 7, NOW + 10_000))
        .await
        .unwrap();
    store.delete_user(ada).await.unwrap();
    assert!(store.user_by_id(ada).await.unwrap().is_none());
    assert!(
        store
            .session(&[7; 32], NOW, 10_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.workspace(ada, ws).await.unwrap().is_none());
    // The name is free again.
    let again = user(&store, "ada").await;
    assert!(store.list_workspaces(again).await.unwrap().is_empty());
}

async fn apply(
    store: &Arc<dyn Store>,
    owner: UserId,
    ws: WorkspaceId,
    changes: &[SandboxWrite<'_>],
    limits: &Limits,
) -> Vec<Applied> {
    store
        .apply_sandbox_changes(owner, ws, changes, limits, NOW)
        .await
        .unwrap()
}

async fn sandbox_changes_apply_in_one_batch_each_refused_alone(store: Arc<dyn Store>) {
    let owner = user(&store, "ada").await;
    let ws = workspace(&store, owner, "demo").await;
    let limits = Limits {
        max_files_per_workspace: 6,
        max_file_bytes: 8,
        ..Limits::default()
    };
    let (a, b, big, dir, gone) = (
        path("out/a.txt"),
        path("out/b.txt"),
        path("big.bin"),
        path("data"),
        path("main.py"),
    );
    let changes = [
        SandboxWrite::File {
            path: &a,
            content: b"1",
            expect: Expect::Any,
        },
        SandboxWrite::File {
            path: &big,
            content: b"123456789",
            expect: Expect::Any,
        },
        SandboxWrite::Dir { path: &dir },
        SandboxWrite::Dir { path: &dir },
        SandboxWrite::Remove {
            path: &gone,
            expect: Expect::Any,
        },
        SandboxWrite::File {
            path: &b,
            content: b"2",
            expect: Expect::Any,
        },
        // The same content again: nothing to write, no new version.
        SandboxWrite::File {
            path: &a,
            content: b"1",
            expect: Expect::Any,
        },
    ];
    let applied = apply(&store, owner, ws, &changes, &limits).await;
    assert!(
        matches!(&applied[0], Applied::Saved(entry) if entry.version == 1),
        "{applied:?}"
    );
    assert!(
        matches!(applied[1], Applied::Refused(Error::Limit(Limit::FileBytes))),
        "{applied:?}"
    );
    assert!(matches!(&applied[2], Applied::Saved(entry) if entry.kind == FileKind::Dir));
    assert!(matches!(applied[3], Applied::Unchanged));
    assert!(matches!(applied[4], Applied::Removed(1)));
    assert!(matches!(applied[5], Applied::Saved(_)));
    assert!(matches!(applied[6], Applied::Unchanged));
    let paths: Vec<String> = store
        .list_files(owner, ws)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.path.to_string())
        .collect();
    assert_eq!(paths, ["data", "out", "out/a.txt", "out/b.txt"]);

    // Past the entry limit, each change is refused alone and the others stand.
    let names: Vec<WorkspacePath> = (0..4).map(|n| path(&format!("n{n}"))).collect();
    let changes: Vec<SandboxWrite<'_>> = names
        .iter()
        .map(|path| SandboxWrite::File {
            path,
            content: b"x",
            expect: Expect::Any,
        })
        .collect();
    let applied = apply(&store, owner, ws, &changes, &limits).await;
    let saved = applied
        .iter()
        .filter(|a| matches!(a, Applied::Saved(_)))
        .count();
    let refused = applied
        .iter()
        .filter(|a| matches!(a, Applied::Refused(Error::Limit(Limit::WorkspaceFiles))))
        .count();
    assert_eq!((saved, refused), (2, 2), "{applied:?}");
    assert_eq!(store.usage(owner, ws).await.unwrap().entries, 6);

    // A removed folder goes with what is inside it; the usage follows.
    let out = path("out");
    let applied = apply(
        &store,
        owner,
        ws,
        &[SandboxWrite::Remove {
            path: &out,
            expect: Expect::Any,
        }],
        &limits,
    )
    .await;
    assert!(matches!(applied[0], Applied::Removed(3)), "{applied:?}");
    assert_eq!(store.usage(owner, ws).await.unwrap().entries, 3);

    // Another owner's workspace: nothing.
    let eve = user(&store, "eve").await;
    assert!(matches!(
        store
            .apply_sandbox_changes(eve, ws, &[SandboxWrite::Dir { path: &dir }], &limits, NOW)
            .await,
        Err(Error::NotFound)
    ));
}

async fn sandbox_changes_that_name_a_version_never_undo_a_newer_save(store: Arc<dyn Store>) {
    let owner = user(&store, "ada").await;
    let ws = workspace(&store, owner, "demo").await;
    let limits = Limits::default();
    let main = path("main.py");
    let seen = store
        .read_file(owner, ws, &main)
        .await
        .unwrap()
        .entry
        .version;
    // A save lands after the resync looked.
    write(&store, owner, ws, "main.py", b"newer", Some(seen))
        .await
        .unwrap();
    let applied = apply(
        &store,
        owner,
        ws,
        &[
            SandboxWrite::File {
                path: &main,
                content: b"older",
                expect: Expect::Version(seen),
            },
            SandboxWrite::Remove {
                path: &main,
                expect: Expect::Version(seen),
            },
        ],
        &limits,
    )
    .await;
    assert!(
        applied.iter().all(|a| matches!(a, Applied::Refused(Error::VersionConflict { current: Some(v) }) if *v == seen + 1)),
        "{applied:?}"
    );
    assert_eq!(
        store.read_file(owner, ws, &main).await.unwrap().content,
        b"newer"
    );

    // A file made after the look: `Absent` does not replace it.
    let made = path("made.txt");
    write(&store, owner, ws, "made.txt", b"saved", None)
        .await
        .unwrap();
    let applied = apply(
        &store,
        owner,
        ws,
        &[SandboxWrite::File {
            path: &made,
            content: b"x",
            expect: Expect::Absent,
        }],
        &limits,
    )
    .await;
    assert!(
        matches!(applied[0], Applied::Refused(Error::VersionConflict { .. })),
        "{applied:?}"
    );

    // A folder that was empty when looked at, but holds a new file now, stays.
    let dir = path("dir");
    let entry = store.make_dir(owner, ws, &dir, &limits, NOW).await.unwrap();
    write(&store, owner, ws, "dir/new.py", b"new", None)
        .await
        .unwrap();
    let applied = apply(
        &store,
        owner,
        ws,
        &[SandboxWrite::Remove {
            path: &dir,
            expect: Expect::Version(entry.version),
        }],
        &limits,
    )
    .await;
    assert!(
        matches!(applied[0], Applied::Refused(Error::VersionConflict { .. })),
        "{applied:?}"
    );
    assert!(
        store
            .read_file(owner, ws, &path("dir/new.py"))
            .await
            .is_ok()
    );
    // The version seen, with nothing newer: applied.
    let current = store
        .read_file(owner, ws, &made)
        .await
        .unwrap()
        .entry
        .version;
    let applied = apply(
        &store,
        owner,
        ws,
        &[SandboxWrite::Remove {
            path: &made,
            expect: Expect::Version(current),
        }],
        &limits,
    )
    .await;
    assert!(matches!(applied[0], Applied::Removed(1)), "{applied:?}");
}

/// The rebuild of SQLite's `users` table (addresses no longer unique) keeps every account
/// and everything hanging off it, and the cascades still reach them.
#[tokio::test]
async fn sqlite_upgrades_from_the_first_schema_keeping_everything() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/codepod.db?mode=rwc", dir.path().display());
    // The database as the first schema left it, with an account in it.
    let first = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../migrations/sqlite/0001_initial.sql"
        ),
        first.path().join("0001_initial.sql"),
    )
    .unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(first.path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    let (user, ws) = (Uuid::new_v4(), Uuid::new_v4());
    for (sql, id) in [
        (
            "INSERT INTO users VALUES ($1, 'ada', 'ada@example.org', 'hash', 1, 1)",
            user,
        ),
        (
            "INSERT INTO auth_sessions VALUES (x'01', $1, 1, 1, 9999999999999, NULL)",
            user,
        ),
        (
            "INSERT INTO workspaces VALUES ($1, $2, 'demo', 'python', 1, 1, 1)",
            ws,
        ),
    ] {
        let query = sqlx::query(sql).bind(id);
        let query = if sql.contains("$2") {
            query.bind(user)
        } else {
            query
        };
        query.execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = store::connect(&url).await.unwrap();
    let ada = store.user_by_username("ada").await.unwrap().unwrap();
    assert_eq!(ada.id, UserId(user));
    assert!(
        store
            .session(&[1], 2, i64::MAX / 2)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.list_workspaces(ada.id).await.unwrap().len(), 1);
    // The address may be shared now; the cascades still reach sessions and workspaces.
    let twin = UserRecord {
        id: UserId(Uuid::new_v4()),
        username: "twin".into(),
        email: "ada@example.org".into(),
        password_hash: "hash".into(),
        created_at: NOW,
        updated_at: NOW,
    };
    store.create_user(&twin).await.unwrap();
    store.delete_user(ada.id).await.unwrap();
    assert!(
        store
            .session(&[1], 2, i64::MAX / 2)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.list_workspaces(ada.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .users_by_email("ada@example.org", 8)
            .await
            .unwrap()
            .len(),
        1
    );
}
