//! The same API on a PostgreSQL-backed server: the flows whose correctness depends on the
//! database (sessions, scoping, optimistic concurrency under contention).

mod common;

use common::{PASSWORD, fresh_postgres_url, spawn_app_configured};
use serde_json::json;

async fn postgres_app() -> common::TestApp {
    postgres_app_at(fresh_postgres_url().await).await
}

async fn postgres_app_at(url: String) -> common::TestApp {
    spawn_app_configured(move |config| config.database_url = Some(url.parse().unwrap())).await
}

#[tokio::test]
async fn an_internal_error_shows_a_reference_and_never_the_database_details() {
    use sqlx::Connection;
    let url = fresh_postgres_url().await;
    let app = postgres_app_at(url.clone()).await;
    let ada = app.signed_up("ada").await;
    ada.workspace("demo").await;
    // Break the schema under the running server.
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE workspaces RENAME TO workspaces_gone")
        .execute(&mut admin)
        .await
        .unwrap();

    let (status, error) = ada.post("/api/workspaces/list", json!({})).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (500, Some("internal")),
        "{error}"
    );
    let reference = error["reference"].as_str().unwrap();
    assert_eq!(reference.len(), 32, "{error}");
    let text = error.to_string().to_lowercase();
    for leak in [
        "workspaces",
        "relation",
        "sql",
        "postgres",
        "select",
        "does not exist",
    ] {
        assert!(!text.contains(leak), "the error leaks {leak:?}: {error}");
    }
    let ready = ada.http.get(ada.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "a broken table is not a dead database");
}

#[tokio::test]
async fn the_server_reports_postgres_and_is_ready() {
    let app = postgres_app().await;
    let browser = app.browser();
    let info: serde_json::Value = browser
        .http
        .get(browser.url("/api/meta/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["store"], "postgres");
    let ready = browser
        .http
        .get(browser.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn accounts_workspaces_and_files_work_on_postgres() {
    let app = postgres_app().await;
    let ada = app.signed_up("ada").await;
    let eve = app.signed_up("eve").await;
    let ws = ada.workspace("demo").await;
    let (status, entry) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "a/b.py", "content": { "encoding": "utf8", "data": "b" } }))
        .await;
    assert_eq!(
        (status, entry["version"].as_i64()),
        (200, Some(1)),
        "{entry}"
    );
    assert_eq!(
        eve.post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "a/b.py" })
        )
        .await
        .0,
        404
    );
    let (status, moved) = ada
        .post(
            "/api/files/move",
            json!({ "workspace": ws, "from": "a", "to": "c/d" }),
        )
        .await;
    assert_eq!((status, moved["path"].as_str()), (200, Some("c/d")));
    let (_, read) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "c/d/b.py" }),
        )
        .await;
    assert_eq!(read["data"], "b");
    assert_eq!(ada.post("/api/users/logout", json!({})).await.0, 200);
    assert_eq!(ada.post("/api/users/me", json!({})).await.0, 401);
    let again = app.browser();
    assert_eq!(
        again
            .post(
                "/api/users/login",
                json!({ "login": "ada", "password": PASSWORD })
            )
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn concurrent_writes_on_postgres_let_exactly_one_succeed() {
    let app = postgres_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    common::assert_exactly_one_of_ten_concurrent_writes_wins(&ada, &ws).await;
}
