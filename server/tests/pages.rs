//! The HTML side of accounts and workspaces: the sign-in, sign-up, sign-out, account and
//! dashboard forms (plain form posts), and the guard in front of the app's pages.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use common::{PASSWORD, spawn_app};
use reqwest::{StatusCode, header};

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_with_where_they_were_going() {
    let app = spawn_app().await;
    for (path, expected) in [
        ("/", "/signin"),
        ("/account", "/signin?next=%2Faccount"),
        (
            "/w/00000000-0000-4000-8000-000000000000?x=1",
            "/signin?next=%2Fw%2F00000000-0000-4000-8000-000000000000%3Fx%3D1",
        ),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), expected, "{path}");
    }
    let page = app.client.get(app.url("/signin")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"action="/signin""#), "{html}");
    assert!(html.contains(r#"method="post""#), "{html}");
}

#[tokio::test]
async fn the_sign_up_and_sign_in_forms_work_without_javascript() {
    let app = spawn_app().await;
    let browser = app.browser();
    let origin = app.url("");
    let response = browser
        .http
        .post(app.url("/signup"))
        .header(header::ORIGIN, &origin)
        .form(&[
            ("username", "ada"),
            ("email", "ada@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert!(
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    // Signed in: the dashboard renders, the sign-in page sends back to it.
    let dashboard = browser.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    let again = browser.http.get(app.url("/signin")).send().await.unwrap();
    assert_eq!(location(&again), "/");

    // Sign out (a form too), then sign in with the form, back to where we were going.
    let out = browser
        .http
        .post(app.url("/signout"))
        .header(header::ORIGIN, &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&out), "/signin");
    assert_eq!(
        browser
            .http
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );
    let signed_in = browser
        .http
        .post(app.url("/signin"))
        .header(header::ORIGIN, &origin)
        .form(&[
            ("login", "ADA"),
            ("password", PASSWORD),
            ("next", "/account"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&signed_in), "/account");
}

#[tokio::test]
async fn form_errors_come_back_inline_and_never_echo_the_password() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/signin"))
        .form(&[
            ("login", "nobody"),
            ("password", "hunter2-secret-pw"),
            ("next", "/w/x"),
        ])
        .send()
        .await
        .unwrap();
    let back = location(&response);
    assert!(back.starts_with("/signin?error=bad_credentials"), "{back}");
    assert!(
        back.contains("login=nobody") && back.contains("next=%2Fw%2Fx"),
        "{back}"
    );
    assert!(!back.contains("hunter2"), "{back}");
    let page = app
        .client
        .get(app.url(&back))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Wrong username or password."), "{page}");

    let response = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("username", "x"),
            ("email", "x@example.org"),
            ("password", "long enough password"),
        ])
        .send()
        .await
        .unwrap();
    let back = location(&response);
    assert!(back.starts_with("/signup?error=invalid_username"), "{back}");
    assert!(!back.contains("long%20enough"), "{back}");
}

/// The attacks: `/signin?message=` printed whatever text a link carried (a phishing line on
/// our own page), and a 200 kB login was reflected into a 600 kB `Location` header. Now the
/// page shows a fixed sentence per error code and nothing else from the query, and nothing
/// longer than a field holds is sent back.
#[tokio::test]
async fn sign_in_messages_come_from_a_fixed_set_and_reflections_are_bounded() {
    let app = spawn_app().await;
    let spoof = "Your account is locked. Call +1 555 0100 to unlock it.";
    let page = app
        .client
        .get(app.url(&format!(
            "/signin?error=bad_credentials&message={}",
            spoof.replace(' ', "%20")
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Wrong username or password."));
    assert!(!page.contains("Call +1 555"), "attacker text shown");
    let page = app
        .client
        .get(app.url("/signin?error=made_up_code"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Something went wrong; please try again."));

    let huge = "a".repeat(200_000);
    let response = app
        .client
        .post(app.url("/signin"))
        .form(&[
            ("login", huge.as_str()),
            ("password", "whatever password"),
            ("next", &format!("/{huge}")),
        ])
        .send()
        .await
        .unwrap();
    let back = location(&response);
    assert!(back.len() < 300, "a {} byte Location", back.len());
    assert!(!back.contains("message="), "{back}");
}

#[tokio::test]
async fn forms_posted_from_another_site_are_refused_and_redirects_stay_local() {
    let app = spawn_app().await;
    let browser = app.signed_up("ada").await;
    for path in [
        "/signin",
        "/signup",
        "/signout",
        "/account/password",
        "/account/sessions",
        "/account/delete",
    ] {
        let response = browser
            .http
            .post(app.url(path))
            .header(header::ORIGIN, "https://evil.example")
            .form(&[
                ("login", "ada"),
                ("password", PASSWORD),
                ("current_password", PASSWORD),
                ("new_password", "a new password here"),
                ("confirm", "on"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Still signed in, with the same password: the cross-site posts did nothing.
    assert_eq!(
        browser
            .http
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let password_unchanged = account_form(
        &app,
        &app.browser(),
        "/signin",
        &[("login", "ada"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(password_unchanged, "/");
    for next in ["https://evil.example/", "//evil.example", "/\\evil.example"] {
        let response = app
            .client
            .post(app.url("/signin"))
            .form(&[("login", "ada"), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&response), "/", "{next}");
    }
}

#[tokio::test]
async fn another_users_workspace_page_is_the_404_page() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let bob = app.signed_up("bob").await;
    for path in [
        format!("/w/{ws}"),
        "/w/00000000-0000-4000-8000-000000000000".to_owned(),
        "/w/not-a-uuid".to_owned(),
    ] {
        let response = bob.http.get(bob.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("404 · Not found"), "{path}");
        assert!(!html.contains("demo"), "{path} leaked the workspace name");
    }
    let own = ada
        .http
        .get(ada.url(&format!("/w/{ws}")))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
}

/// Posts an account form as the page does (same origin); returns where it sends the browser.
async fn account_form(
    app: &common::TestApp,
    browser: &common::Browser,
    path: &str,
    form: &[(&str, &str)],
) -> String {
    let response = browser
        .http
        .post(app.url(path))
        .header(header::ORIGIN, app.url(""))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    location(&response)
}

#[tokio::test]
async fn the_account_forms_change_the_password_and_end_other_sessions_without_javascript() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let elsewhere = app.browser();
    let signed_in = account_form(
        &app,
        &elsewhere,
        "/signin",
        &[("login", "ada"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(signed_in, "/");

    // A wrong current password, then a new one too short: the form says why, nothing changes.
    let wrong = account_form(
        &app,
        &ada,
        "/account/password",
        &[
            ("current_password", "not my password"),
            ("new_password", "a new password here"),
        ],
    )
    .await;
    assert_eq!(wrong, "/account?failed=password&error=wrong_password");
    assert!(
        ada.page(&wrong)
            .await
            .contains("The current password is wrong.")
    );
    let short = account_form(
        &app,
        &ada,
        "/account/password",
        &[("current_password", PASSWORD), ("new_password", "short")],
    )
    .await;
    assert_eq!(short, "/account?failed=password&error=invalid_password");
    // Text in the query is never shown: only the code's own sentence.
    let forged = ada
        .page("/account?failed=password&error=<b>pwned</b>")
        .await;
    assert!(
        !forged.contains("<b>pwned") && !forged.contains("pwned"),
        "{forged}"
    );
    assert!(elsewhere.page("/").await.contains("Workspaces"));

    // Changed: the other browser is signed out, this one is not; the new password signs in.
    let done = account_form(
        &app,
        &ada,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a new password here"),
        ],
    )
    .await;
    assert_eq!(done, "/account?done=password");
    assert!(ada.page(&done).await.contains("Password changed"));
    let gone = elsewhere.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::SEE_OTHER);
    let again = account_form(
        &app,
        &elsewhere,
        "/signin",
        &[("login", "ada"), ("password", "a new password here")],
    )
    .await;
    assert_eq!(again, "/");

    // Sign out everywhere else: the other browser is out again, the count says so.
    let ended = account_form(&app, &ada, "/account/sessions", &[]).await;
    assert_eq!(ended, "/account?done=sessions&count=1");
    assert!(
        ada.page(&ended)
            .await
            .contains("Signed out 1 other session(s).")
    );
    let gone = elsewhere.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        ada.http.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Signed out, every form sends to sign in and does nothing.
    for path in ["/account/password", "/account/sessions", "/account/delete"] {
        let back = account_form(
            &app,
            &elsewhere,
            path,
            &[
                ("current_password", "a new password here"),
                ("new_password", "x"),
                ("password", "x"),
                ("confirm", "on"),
            ],
        )
        .await;
        assert_eq!(back, "/signin?next=%2Faccount", "{path}");
    }
}

#[tokio::test]
async fn deleting_the_account_from_its_page_needs_the_box_and_the_password() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let unticked = account_form(&app, &ada, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(unticked, "/account?failed=delete&error=invalid_input");
    assert!(ada.page(&unticked).await.contains("Tick the box"));
    let wrong = account_form(
        &app,
        &ada,
        "/account/delete",
        &[("password", "not my password"), ("confirm", "on")],
    )
    .await;
    assert_eq!(wrong, "/account?failed=delete&error=wrong_password");
    assert_eq!(
        ada.http.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    let response = ada
        .http
        .post(app.url("/account/delete"))
        .header(header::ORIGIN, app.url(""))
        .form(&[("password", PASSWORD), ("confirm", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/signin");
    assert!(
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // Gone: the name cannot sign in.
    let login = account_form(
        &app,
        &app.browser(),
        "/signin",
        &[("login", "ada"), ("password", PASSWORD)],
    )
    .await;
    assert!(
        login.starts_with("/signin?error=bad_credentials"),
        "{login}"
    );
}

/// The dashboard's workspaces as the JSON API lists them: (name, sandbox state).
async fn listed(browser: &common::Browser) -> Vec<(String, String)> {
    let (status, list) = browser
        .post("/api/workspaces/list", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|workspace| {
            (
                workspace["name"].as_str().unwrap().to_owned(),
                workspace["sandbox"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_dashboard_forms_create_rename_start_stop_and_delete_without_javascript() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let page = ada.page("/").await;
    assert!(page.contains(r#"action="/workspaces/new""#), "{page}");
    assert!(page.contains("No workspaces yet"), "{page}");

    // Create: straight into the new workspace's IDE.
    let created = account_form(&app, &ada, "/workspaces/new", &[("name", "demo")]).await;
    let id = created.strip_prefix("/w/").unwrap().to_owned();
    assert_eq!(
        listed(&ada).await,
        [("demo".to_owned(), "stopped".to_owned())]
    );
    let page = ada.page("/").await;
    for part in [
        format!(r#"data-workspace="{id}""#),
        format!(r#"action="/workspaces/{id}/start""#),
        "active just now".to_owned(),
        r#"class="badge stopped""#.to_owned(),
    ] {
        assert!(page.contains(&part), "{part} in {page}");
    }

    // A taken name and a bad one: back to the dashboard with a fixed sentence and the typed
    // name in the field; nothing is made.
    let taken = account_form(&app, &ada, "/workspaces/new", &[("name", "demo")]).await;
    assert_eq!(
        taken,
        "/?failed=create&error=workspace_name_taken&name=demo"
    );
    let page = ada.page(&taken).await;
    assert!(
        page.contains("You already have a workspace of that name."),
        "{page}"
    );
    let bad = account_form(&app, &ada, "/workspaces/new", &[("name", "a/b")]).await;
    assert_eq!(bad, "/?failed=create&error=invalid_input&name=a%2Fb");
    assert!(
        ada.page(&bad)
            .await
            .contains("A workspace name has 1 to 64 characters")
    );
    assert_eq!(listed(&ada).await.len(), 1);

    // Rename: the link shows the field with the name in it; a bad name comes back to it.
    let page = ada.page(&format!("/?rename={id}")).await;
    assert!(
        page.contains(&format!(r#"action="/workspaces/{id}/rename""#)),
        "{page}"
    );
    assert!(page.contains(r#"value="demo""#), "{page}");
    let rename = format!("/workspaces/{id}/rename");
    let bad = account_form(&app, &ada, &rename, &[("name", "")]).await;
    assert_eq!(
        bad,
        format!("/?failed=rename&error=invalid_input&workspace={id}")
    );
    assert!(ada.page(&bad).await.contains("rename-input"));
    assert_eq!(
        account_form(&app, &ada, &rename, &[("name", "renamed")]).await,
        "/"
    );

    // Start answers once the sandbox is ready; the button then stops it.
    let start = format!("/workspaces/{id}/start");
    assert_eq!(account_form(&app, &ada, &start, &[]).await, "/");
    assert_eq!(
        listed(&ada).await,
        [("renamed".to_owned(), "ready".to_owned())]
    );
    let page = ada.page("/").await;
    assert!(
        page.contains(&format!(r#"action="/workspaces/{id}/stop""#)),
        "{page}"
    );
    assert!(page.contains(r#"class="badge running""#), "{page}");
    let stop = format!("/workspaces/{id}/stop");
    assert_eq!(account_form(&app, &ada, &stop, &[]).await, "/");
    assert_eq!(listed(&ada).await[0].1, "stopped");

    // Delete: the link asks first; the form deletes.
    let page = ada.page(&format!("/?delete={id}")).await;
    assert!(
        page.contains("and all its files? This cannot be undone."),
        "{page}"
    );
    let delete = format!("/workspaces/{id}/delete");
    assert!(page.contains(&format!(r#"action="{delete}""#)), "{page}");
    assert_eq!(account_form(&app, &ada, &delete, &[]).await, "/");
    assert!(listed(&ada).await.is_empty());
}

#[tokio::test]
async fn the_dashboard_forms_touch_only_the_users_own_workspaces_from_this_site() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("mine").await;
    let bob = app.signed_up("bob").await;
    // Another user's workspace, a missing one and a malformed id: the same answer, and
    // Ada's workspace is untouched.
    for id in [
        ws.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "not-a-uuid",
    ] {
        for action in ["rename", "start", "stop", "delete"] {
            let path = format!("/workspaces/{id}/{action}");
            let back = account_form(&app, &bob, &path, &[("name", "stolen")]).await;
            assert!(
                back.starts_with(&format!("/?failed={action}&error=not_found")),
                "{path}: {back}"
            );
        }
    }
    assert_eq!(
        listed(&ada).await,
        [("mine".to_owned(), "stopped".to_owned())]
    );
    // An action the dashboard does not have is not one.
    let response = ada
        .http
        .post(app.url(&format!("/workspaces/{ws}/frobnicate")))
        .header(header::ORIGIN, app.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Cross-site posts are refused before they do anything.
    for path in [
        "/workspaces/new".to_owned(),
        format!("/workspaces/{ws}/rename"),
        format!("/workspaces/{ws}/delete"),
    ] {
        let response = ada
            .http
            .post(app.url(&path))
            .header(header::ORIGIN, "https://evil.example")
            .form(&[("name", "evil")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        listed(&ada).await,
        [("mine".to_owned(), "stopped".to_owned())]
    );
    // Signed out: sent to sign in, nothing made.
    let stranger = app.browser();
    let back = account_form(&app, &stranger, "/workspaces/new", &[("name", "x")]).await;
    assert_eq!(back, "/signin");
    let back = account_form(&app, &stranger, &format!("/workspaces/{ws}/delete"), &[]).await;
    assert_eq!(back, "/signin");
    assert_eq!(listed(&ada).await.len(), 1);
}

#[tokio::test]
async fn a_workspace_name_is_shown_as_text_in_every_step_of_the_dashboard() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let name = r#"<img src=x onerror="alert(1)">"#;
    let created = account_form(&app, &ada, "/workspaces/new", &[("name", name)]).await;
    let id = created.strip_prefix("/w/").unwrap().to_owned();
    // The list, the rename field, the delete question, and a failed create refilling it.
    let taken = account_form(&app, &ada, "/workspaces/new", &[("name", name)]).await;
    for path in [
        "/".to_owned(),
        format!("/?rename={id}"),
        format!("/?delete={id}"),
        taken,
    ] {
        let page = ada.page(&path).await;
        assert!(
            !page.contains("<img src=x"),
            "{path} has the name as markup:\n{page}"
        );
        assert!(
            page.contains("&lt;img src=x"),
            "{path} lacks the name:\n{page}"
        );
    }
}
