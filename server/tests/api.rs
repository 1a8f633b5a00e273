//! The public JSON API over real HTTP against the real server (SQLite): accounts, sessions,
//! authorization, cross-site protection, workspaces and files, limits and error shapes.

mod common;

use common::{PASSWORD, json_of, spawn_app, spawn_app_configured};
use serde_json::json;

// --- accounts ----------------------------------------------------------------------------

#[tokio::test]
async fn register_signs_in_with_a_hardened_cookie_and_me_returns_the_user() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = browser
        .post_raw(
            "/api/users/register",
            json!({ "username": "Ada", "email": "ada@example.org", "password": PASSWORD }),
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], "ada");
    assert!(body.get("password_hash").is_none());
    assert!(cookie.starts_with("codepod_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(token.len() >= 43, "256-bit token, base64url: {token}");

    let (status, me) = browser.post("/api/users/me", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "ada@example.org");
}

#[tokio::test]
async fn an_https_origin_gets_a_host_prefixed_secure_cookie() {
    let app = spawn_app_configured(|config| {
        config.public_origin = Some("https://codepod.example".into())
    })
    .await;
    let response = app
        .browser()
        .post_raw(
            "/api/users/register",
            json!({ "username": "ada", "email": "ada@example.org", "password": PASSWORD }),
        )
        .await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-codepod_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn registration_rejects_bad_fields_with_422_and_malformed_json_with_400() {
    let app = spawn_app().await;
    let browser = app.browser();
    for (body, needle) in [
        (
            json!({ "username": "ab", "email": "ada@example.org", "password": PASSWORD }),
            "username",
        ),
        (
            json!({ "username": "a d a", "email": "ada@example.org", "password": PASSWORD }),
            "username",
        ),
        (
            json!({ "username": "ada", "email": "not-an-email", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "username": "ada", "email": "ada@example.org", "password": "short" }),
            "password",
        ),
        (
            json!({ "username": "ada", "email": "ada@example.org", "password": "x".repeat(129) }),
            "password",
        ),
        (
            json!({ "username": "ada", "email": "ada@example.org" }),
            "password",
        ),
    ] {
        let (status, error) = browser.post("/api/users/register", body.clone()).await;
        assert_eq!(status, 422, "{body} → {error}");
        assert_eq!(error["code"], "invalid_input");
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{error}"
        );
    }
    let response = browser
        .http
        .post(browser.url("/api/users/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, error) = json_of(response).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "bad_request");

    // Whether the body is JSON decides 400 against 422, not the wording of the error: bytes
    // that are not UTF-8 inside a string were a 422 ("invalid unicode code point" matched
    // none of the "malformed" phrases).
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let cases: [(&[u8], u16, &str); 7] = [
        (
            b"{\"login\": \"\xff\", \"password\": \"x\"}",
            400,
            "bad_request",
        ),
        (b"{} trailing", 400, "bad_request"),
        (b"", 400, "bad_request"),
        (deep.as_bytes(), 422, "invalid_input"),
        (br#"{"login": "ada", "password": 5}"#, 422, "invalid_input"),
        (
            br#"["ada", "correct horse battery"]"#,
            401,
            "bad_credentials",
        ),
        (br#""a string""#, 422, "invalid_input"),
    ];
    for (body, status, code) in cases {
        let response = browser
            .http
            .post(browser.url("/api/users/login"))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let (got, error) = json_of(response).await;
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        assert_eq!(
            (got, error["code"].as_str().unwrap_or_default()),
            (status, code),
            "{shown} → {error}"
        );
    }
}

/// The attack: sign-up answered `email_taken`, telling anyone whether an address has an
/// account. A username must be unique (and says so); an address need not, and does not.
#[tokio::test]
async fn a_taken_username_is_409_and_a_registered_address_is_not_revealed() {
    let app = spawn_app().await;
    app.signed_up("ada").await;
    let browser = app.browser();
    let (status, error) = browser
        .post(
            "/api/users/register",
            json!({ "username": "ADA", "email": "other@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("username_taken"))
    );
    let (status, body) = browser
        .post(
            "/api/users/register",
            json!({ "username": "bob", "email": "Ada@Example.org", "password": "bob's own password" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Both sign in by the address, each with their own password.
    for password in [PASSWORD, "bob's own password"] {
        let (status, me) = app
            .browser()
            .post(
                "/api/users/login",
                json!({ "login": "ada@example.org", "password": password }),
            )
            .await;
        assert_eq!(status, 200, "{me}");
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.signed_up("ada").await;
    let browser = app.browser();
    let (wrong_status, wrong) = browser
        .post(
            "/api/users/login",
            json!({ "login": "ada", "password": "wrong password!" }),
        )
        .await;
    let (unknown_status, unknown) = browser
        .post(
            "/api/users/login",
            json!({ "login": "nobody", "password": "wrong password!" }),
        )
        .await;
    assert_eq!((wrong_status, unknown_status), (401, 401));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["code"], "bad_credentials");
}

#[tokio::test]
async fn login_by_username_or_email_issues_a_new_token_every_time() {
    let app = spawn_app().await;
    app.signed_up("ada").await;
    let mut tokens = Vec::new();
    for login in ["ada", "ada@example.org", "ADA"] {
        let response = app
            .browser()
            .post_raw(
                "/api/users/login",
                json!({ "login": login, "password": PASSWORD }),
            )
            .await;
        assert_eq!(response.status(), 200, "{login}");
        tokens.push(
            response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "every sign-in gets its own token");
}

#[tokio::test]
async fn logout_revokes_the_session_server_side() {
    let app = spawn_app().await;
    let browser = app.signed_up("ada").await;
    // A copy of the cookie, as a thief would keep it.
    let response = app
        .browser()
        .post_raw(
            "/api/users/login",
            json!({ "login": "ada", "password": PASSWORD }),
        )
        .await;
    let stolen = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let replay = |cookie: String| {
        let client = reqwest::Client::new();
        let url = browser.url("/api/users/me");
        async move {
            client
                .post(url)
                .header("cookie", cookie)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(replay(stolen.clone()).await, 200);

    let (status, _) = browser.post("/api/users/logout", json!({})).await;
    assert_eq!(status, 200);
    let (status, error) = browser.post("/api/users/me", json!({})).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    // The other session is unaffected by this logout...
    assert_eq!(replay(stolen.clone()).await, 200);
    // ...and is itself revoked by logging it out.
    let client = reqwest::Client::new();
    let status = client
        .post(browser.url("/api/users/logout"))
        .header("cookie", &stolen)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(replay(stolen).await, 401);
}

#[tokio::test]
async fn changing_the_password_signs_out_every_other_session() {
    let app = spawn_app().await;
    let here = app.signed_up("ada").await;
    let elsewhere = app.browser();
    let (status, _) = elsewhere
        .post(
            "/api/users/login",
            json!({ "login": "ada", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 200);

    let (status, error) = here
        .post(
            "/api/users/password",
            json!({ "current_password": "not my password", "new_password": "a brand new secret" }),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("wrong_password"))
    );
    assert_eq!(
        elsewhere.post("/api/users/me", json!({})).await.0,
        200,
        "a failed change revokes nothing"
    );

    let (status, _) = here
        .post(
            "/api/users/password",
            json!({ "current_password": PASSWORD, "new_password": "a brand new secret" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(here.post("/api/users/me", json!({})).await.0, 200);
    assert_eq!(elsewhere.post("/api/users/me", json!({})).await.0, 401);
    let fresh = app.browser();
    assert_eq!(
        fresh
            .post(
                "/api/users/login",
                json!({ "login": "ada", "password": PASSWORD })
            )
            .await
            .0,
        401
    );
    assert_eq!(
        fresh
            .post(
                "/api/users/login",
                json!({ "login": "ada", "password": "a brand new secret" })
            )
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_and_removes_everything() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let (status, _) = ada
        .post("/api/users/delete", json!({ "password": "wrong password" }))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        ada.post("/api/workspaces/get", json!({ "id": ws })).await.0,
        200
    );

    let (status, _) = ada
        .post("/api/users/delete", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ada.post("/api/users/me", json!({})).await.0, 401);
    assert_eq!(
        app.browser()
            .post(
                "/api/users/login",
                json!({ "login": "ada", "password": PASSWORD })
            )
            .await
            .0,
        401
    );
    // The username is free, and the new account sees nothing of the old one.
    let again = app.signed_up("ada").await;
    assert_eq!(
        again
            .post("/api/workspaces/get", json!({ "id": ws }))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn brute_force_on_one_account_is_rate_limited_with_retry_after() {
    let app = spawn_app().await;
    app.signed_up("ada").await;
    let attacker = app.browser();
    for _ in 0..5 {
        let (status, _) = attacker
            .post(
                "/api/users/login",
                json!({ "login": "ada", "password": "guess guess guess" }),
            )
            .await;
        assert_eq!(status, 401);
    }
    let response = attacker
        .post_raw(
            "/api/users/login",
            json!({ "login": "ada", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        response.status(),
        429,
        "even the right password waits out the window"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60);
    let (_, error) = json_of(response).await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["retry_after"], retry_after);
}

#[tokio::test]
async fn brute_force_across_accounts_from_one_ip_is_rate_limited() {
    let app = spawn_app_configured(|config| config.sessions.login_failures_per_ip = 6).await;
    app.signed_up("victim").await;
    let attacker = app.browser();
    for i in 0..6 {
        let (status, _) = attacker
            .post(
                "/api/users/login",
                json!({ "login": format!("user{i}"), "password": "guess guess guess" }),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, error) = attacker
        .post(
            "/api/users/login",
            json!({ "login": "victim", "password": "guess guess guess" }),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // The attack on users: a classroom behind one NAT shares the IP. A right password from
    // it still signs in — the IP's budget only slows guessing.
    let (status, body) = attacker
        .post(
            "/api/users/login",
            json!({ "login": "victim", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The attack: the per-account counter was keyed by the login string, so username and
/// email each got the full budget. Now there is one counter per account, whichever string
/// named it — and it is per account and IP, so the owner signing in from elsewhere is not
/// refused because an attacker failed.
#[tokio::test]
async fn failures_count_once_per_account_whatever_named_it_and_per_ip() {
    let app = spawn_app_configured(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    app.signed_up("ada").await;
    let from = |ip: &'static str, login: &'static str, password: &'static str| {
        let browser = app.browser();
        async move {
            browser
                .http
                .post(browser.url("/api/users/login"))
                .header("x-forwarded-for", ip)
                .json(&json!({ "login": login, "password": password }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for login in ["ada", "ADA@example.org", "ada", "ada@example.org", " Ada "] {
        assert_eq!(from("203.0.113.7", login, "guess guess guess").await, 401);
    }
    // The sixth, by either name, from the attacker's address: refused.
    assert_eq!(from("203.0.113.7", "ada@example.org", PASSWORD).await, 429);
    assert_eq!(from("203.0.113.7", "ada", PASSWORD).await, 429);
    // The owner, elsewhere: signs in.
    assert_eq!(from("198.51.100.20", "ada", PASSWORD).await, 200);
}

/// The attack: sign-up was not throttled (25 accounts of 25 in a burst), and every account
/// may run sandboxes. Now one client IP gets so many per window, then a 429 with
/// Retry-After; the attempts that failed count too.
#[tokio::test]
async fn sign_ups_from_one_ip_are_throttled() {
    let app = spawn_app_configured(|config| config.sessions.signups_per_ip = 3).await;
    let browser = app.browser();
    let register = |n: usize| json!({ "username": format!("user{n}"), "email": format!("user{n}@example.org"), "password": PASSWORD });
    let (status, _) = browser.post("/api/users/register", register(0)).await;
    assert_eq!(status, 200);
    // A taken name fails, and counts.
    let (status, _) = browser.post("/api/users/register", register(0)).await;
    assert_eq!(status, 409);
    let (status, _) = browser.post("/api/users/register", register(1)).await;
    assert_eq!(status, 200);
    let response = browser.post_raw("/api/users/register", register(2)).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let (_, error) = json_of(response).await;
    assert_eq!(error["code"], "rate_limited");
    // The form page is held to the same limit.
    let form = browser
        .http
        .post(browser.url("/signup"))
        .header("origin", browser.url(""))
        .form(&[
            ("username", "user3"),
            ("email", "user3@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let to = form
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    assert!(
        to.as_deref().is_some_and(|to| to.starts_with("/signup")),
        "the form signed up past the limit: {:?} {to:?}",
        form.status()
    );
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_dodge_the_ip_limit() {
    let app = spawn_app_configured(|config| config.sessions.login_failures_per_ip = 3).await;
    let attacker = app.browser();
    for i in 0..3 {
        let response = attacker
            .http
            .post(attacker.url("/api/users/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({ "login": format!("user{i}"), "password": "guess guess guess" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = attacker
        .http
        .post(attacker.url("/api/users/login"))
        .header("x-forwarded-for", "198.51.100.99")
        .json(&json!({ "login": "user9", "password": "guess guess guess" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn every_authenticated_endpoint_needs_a_session() {
    let app = spawn_app().await;
    let anonymous = app.browser();
    let id = "6f1c4a9e-0000-4000-8000-000000000000";
    for (path, body) in [
        ("/api/users/me", json!({})),
        ("/api/users/logout", json!({})),
        (
            "/api/users/password",
            json!({ "current_password": PASSWORD, "new_password": "another secret" }),
        ),
        ("/api/users/delete", json!({ "password": PASSWORD })),
        ("/api/workspaces/create", json!({ "name": "x" })),
        ("/api/workspaces/list", json!({})),
        ("/api/workspaces/get", json!({ "id": id })),
        ("/api/files/tree", json!({ "workspace": id })),
        (
            "/api/files/read",
            json!({ "workspace": id, "path": "main.py" }),
        ),
    ] {
        let (status, error) = anonymous.post(path, body).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (401, Some("unauthenticated")),
            "{path}"
        );
    }
    let forged = reqwest::Client::new()
        .post(anonymous.url("/api/users/me"))
        .header("cookie", "codepod_session=forged-token-value")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}

// --- cross-site protection ----------------------------------------------------------------

#[tokio::test]
async fn cross_site_posts_are_refused_before_they_do_anything() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let response = ada
            .http
            .post(ada.url("/api/workspaces/create"))
            .header(header, value)
            .json(&json!({ "name": format!("csrf {value}") }))
            .send()
            .await
            .unwrap();
        let (status, error) = json_of(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (403, Some("cross_site")),
            "{header}: {value}"
        );
    }
    let (_, list) = ada.post("/api/workspaces/list", json!({})).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was created");
    // The same request from our own origin works.
    let response = ada
        .http
        .post(ada.url("/api/workspaces/create"))
        .header("origin", format!("http://{}", app.address))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "name": "legit" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_cross_site_upload_is_refused() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("evil.py"),
    );
    let response = ada
        .http
        .post(ada.url(&format!("/api/files/upload?workspace={ws}")))
        .header("origin", "http://evil.example")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn wrong_methods_and_unknown_endpoints_get_json_errors() {
    let app = spawn_app().await;
    let browser = app.browser();
    let (status, error) = json_of(
        browser
            .http
            .get(browser.url("/api/users/register"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, error) = browser.post("/api/no/such/thing", json!({})).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
}

// --- workspaces -----------------------------------------------------------------------------

#[tokio::test]
async fn workspaces_are_created_seeded_listed_renamed_and_deleted() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let (status, created) = ada
        .post("/api/workspaces/create", json!({ "name": "  Demo  " }))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        (created["name"].as_str(), created["language"].as_str()),
        (Some("Demo"), Some("python"))
    );
    let id = created["id"].as_str().unwrap();

    let (_, tree) = ada
        .post("/api/files/tree", json!({ "workspace": id }))
        .await;
    assert_eq!(tree[0]["path"], "main.py");
    let (_, main) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": id, "path": "main.py" }),
        )
        .await;
    assert_eq!(main["encoding"], "utf8");
    assert!(main["data"].as_str().unwrap().contains("print("));

    assert_eq!(
        ada.post("/api/workspaces/create", json!({ "name": "Demo" }))
            .await
            .1["code"],
        "workspace_name_taken"
    );
    assert_eq!(
        ada.post("/api/workspaces/create", json!({ "name": "" }))
            .await
            .0,
        422
    );
    assert_eq!(
        ada.post("/api/workspaces/create", json!({ "name": "a/b" }))
            .await
            .0,
        422
    );

    let (status, renamed) = ada
        .post(
            "/api/workspaces/rename",
            json!({ "id": id, "name": "Renamed" }),
        )
        .await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Renamed")));
    let (_, listed) = ada.post("/api/workspaces/list", json!({})).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "Renamed");

    assert_eq!(
        ada.post("/api/workspaces/delete", json!({ "id": id }))
            .await
            .0,
        200
    );
    assert_eq!(
        ada.post("/api/workspaces/get", json!({ "id": id })).await.0,
        404
    );
    assert_eq!(
        ada.post("/api/workspaces/delete", json!({ "id": id }))
            .await
            .0,
        404
    );
    assert_eq!(
        ada.post("/api/workspaces/get", json!({ "id": "not-a-uuid" }))
            .await
            .0,
        422
    );
}

#[tokio::test]
async fn the_workspace_limit_is_a_422() {
    let app = spawn_app_configured(|config| config.limits.max_workspaces_per_user = 1).await;
    let ada = app.signed_up("ada").await;
    ada.workspace("one").await;
    let (status, error) = ada
        .post("/api/workspaces/create", json!({ "name": "two" }))
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("limit_reached"))
    );
}

#[tokio::test]
async fn another_users_workspace_answers_404_exactly_like_a_missing_one() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let eve = app.signed_up("eve").await;
    let ws = ada.workspace("private").await;
    let missing = "6f1c4a9e-0000-4000-8000-000000000000";
    for id in [ws.as_str(), missing] {
        let calls = [
            ("/api/workspaces/get", json!({ "id": id })),
            (
                "/api/workspaces/rename",
                json!({ "id": id, "name": "mine now" }),
            ),
            ("/api/workspaces/delete", json!({ "id": id })),
            ("/api/files/tree", json!({ "workspace": id })),
            (
                "/api/files/read",
                json!({ "workspace": id, "path": "main.py" }),
            ),
            (
                "/api/files/write",
                json!({ "workspace": id, "path": "main.py", "content": { "encoding": "utf8", "data": "pwned" }, "base_version": 1 }),
            ),
            (
                "/api/files/write",
                json!({ "workspace": id, "path": "new.py", "content": { "encoding": "utf8", "data": "pwned" } }),
            ),
            (
                "/api/files/mkdir",
                json!({ "workspace": id, "path": "dir" }),
            ),
            (
                "/api/files/move",
                json!({ "workspace": id, "from": "main.py", "to": "moved.py" }),
            ),
            (
                "/api/files/delete",
                json!({ "workspace": id, "path": "main.py" }),
            ),
        ];
        for (path, body) in calls {
            let (status, error) = eve.post(path, body).await;
            assert_eq!(status, 404, "{path} on {id}");
            assert_eq!(
                error,
                json!({ "code": "not_found", "message": "not found" }),
                "{path}"
            );
        }
        for path in [
            format!("/api/files/download?workspace={id}&path=main.py"),
            format!("/api/workspaces/download?workspace={id}"),
        ] {
            let (status, error) = json_of(eve.http.get(eve.url(&path)).send().await.unwrap()).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (404, Some("not_found")),
                "{path}"
            );
        }
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("evil.py"),
        );
        let response = eve
            .http
            .post(eve.url(&format!("/api/files/upload?workspace={id}")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    // Ada's workspace is untouched.
    let (status, main) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "main.py" }),
        )
        .await;
    assert_eq!((status, main["version"].as_i64()), (200, Some(1)));
    let (_, tree) = ada
        .post("/api/files/tree", json!({ "workspace": ws }))
        .await;
    assert_eq!(tree.as_array().unwrap().len(), 1);
}

// --- files ------------------------------------------------------------------------------------

#[tokio::test]
async fn text_and_binary_files_round_trip_byte_exact() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let text = "héllo\n\tworld \u{1F600}\r\n";
    let (status, entry) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "src/t.txt", "content": { "encoding": "utf8", "data": text } }))
        .await;
    assert_eq!(
        (status, entry["version"].as_i64()),
        (200, Some(1)),
        "{entry}"
    );
    let (_, read) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "src/t.txt" }),
        )
        .await;
    assert_eq!(
        (read["encoding"].as_str(), read["data"].as_str()),
        (Some("utf8"), Some(text))
    );
    assert_eq!(read["size"], text.len());

    // 0x00..0xff is not UTF-8, so it goes out as base64.
    let bytes: Vec<u8> = (0..=255u8).collect();
    let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==";
    let (status, _) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "data.bin", "content": { "encoding": "base64", "data": b64 } }))
        .await;
    assert_eq!(status, 200);
    let (_, read) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "data.bin" }),
        )
        .await;
    assert_eq!(
        (read["encoding"].as_str(), read["data"].as_str()),
        (Some("base64"), Some(b64))
    );
    let raw = ada
        .http
        .get(ada.url(&format!("/api/files/download?workspace={ws}&path=data.bin")))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    assert_eq!(raw.bytes().await.unwrap().to_vec(), bytes);

    let (status, error) = ada
        .post("/api/files/write", json!({ "workspace": ws, "path": "bad.bin", "content": { "encoding": "base64", "data": "!!!" } }))
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("invalid_input"))
    );
}

#[tokio::test]
async fn a_stale_write_is_409_with_the_current_version_and_loses_nothing() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let write = |data: &str, base: Option<i64>| json!({ "workspace": ws, "path": "main.py", "content": { "encoding": "utf8", "data": data }, "base_version": base });
    let (status, entry) = ada.post("/api/files/write", write("first", Some(1))).await;
    assert_eq!((status, entry["version"].as_i64()), (200, Some(2)));
    let (status, error) = ada.post("/api/files/write", write("stale", Some(1))).await;
    assert_eq!(status, 409);
    assert_eq!(
        (error["code"].as_str(), error["current_version"].as_i64()),
        (Some("version_conflict"), Some(2))
    );
    let (status, error) = ada.post("/api/files/write", write("blind", None)).await;
    assert_eq!(
        (status, error["current_version"].as_i64()),
        (409, Some(2)),
        "creating over a file is a conflict"
    );
    let (_, read) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "main.py" }),
        )
        .await;
    assert_eq!(
        (read["data"].as_str(), read["version"].as_i64()),
        (Some("first"), Some(2))
    );
}

#[tokio::test]
async fn concurrent_writes_with_the_same_base_version_let_exactly_one_succeed() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    common::assert_exactly_one_of_ten_concurrent_writes_wins(&ada, &ws).await;
}

#[tokio::test]
async fn traversal_and_junk_paths_are_422_on_every_file_endpoint() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    for bad in [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "a//b",
        "a\\b",
        "nul\u{0}byte",
        "",
        ".",
    ] {
        for (path, body) in [
            ("/api/files/read", json!({ "workspace": ws, "path": bad })),
            (
                "/api/files/write",
                json!({ "workspace": ws, "path": bad, "content": { "encoding": "utf8", "data": "x" } }),
            ),
            ("/api/files/mkdir", json!({ "workspace": ws, "path": bad })),
            (
                "/api/files/move",
                json!({ "workspace": ws, "from": "main.py", "to": bad }),
            ),
            ("/api/files/delete", json!({ "workspace": ws, "path": bad })),
        ] {
            let (status, error) = ada.post(path, body).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (422, Some("invalid_input")),
                "{path} {bad:?}"
            );
        }
    }
    let (status, _) = json_of(
        ada.http
            .get(ada.url(&format!("/api/files/download?workspace={ws}&path=../x")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status == 400 || status == 422, "{status}");
}

#[tokio::test]
async fn size_and_count_limits_answer_413_and_422() {
    let app = spawn_app_configured(|config| {
        config.limits.max_file_bytes = 1024;
        config.limits.max_workspace_bytes = 4096;
        config.limits.max_files_per_workspace = 5;
    })
    .await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let put = |path: &str, size: usize| json!({ "workspace": ws, "path": path, "content": { "encoding": "utf8", "data": "x".repeat(size) } });
    let (status, error) = ada.post("/api/files/write", put("big.txt", 1025)).await;
    assert_eq!((status, error["code"].as_str()), (413, Some("too_large")));
    for i in 0..3 {
        assert_eq!(
            ada.post("/api/files/write", put(&format!("f{i}"), 1024))
                .await
                .0,
            200
        );
    }
    // main.py + 3 KiB leaves less than 1 KiB.
    let (status, error) = ada.post("/api/files/write", put("f3", 1024)).await;
    assert_eq!((status, error["code"].as_str()), (413, Some("too_large")));
    assert_eq!(ada.post("/api/files/write", put("small", 1)).await.0, 200);
    let (status, error) = ada
        .post(
            "/api/files/mkdir",
            json!({ "workspace": ws, "path": "more" }),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("limit_reached"))
    );
    // A body far over the limit is refused before it is read whole.
    let huge = "x".repeat(4 * 1024 * 1024);
    let (status, error) = ada.post("/api/files/write", put("huge", huge.len())).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("too_large")),
        "{error}"
    );
}

#[tokio::test]
async fn folders_are_made_moved_and_deleted_recursively() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let (status, made) = ada
        .post(
            "/api/files/mkdir",
            json!({ "workspace": ws, "path": "pkg/sub" }),
        )
        .await;
    assert_eq!((status, made["kind"].as_str()), (200, Some("dir")));
    assert_eq!(
        ada.post(
            "/api/files/mkdir",
            json!({ "workspace": ws, "path": "pkg/sub" })
        )
        .await
        .1["code"],
        "exists"
    );
    ada.post("/api/files/write", json!({ "workspace": ws, "path": "pkg/sub/m.py", "content": { "encoding": "utf8", "data": "m" } })).await;

    let (status, error) = ada
        .post(
            "/api/files/move",
            json!({ "workspace": ws, "from": "pkg", "to": "pkg/sub/inner" }),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("invalid_input")),
        "into itself"
    );
    assert_eq!(
        ada.post(
            "/api/files/move",
            json!({ "workspace": ws, "from": "pkg", "to": "main.py" })
        )
        .await
        .0,
        409
    );
    let (status, moved) = ada
        .post(
            "/api/files/move",
            json!({ "workspace": ws, "from": "pkg", "to": "lib" }),
        )
        .await;
    assert_eq!((status, moved["path"].as_str()), (200, Some("lib")));
    let (_, tree) = ada
        .post("/api/files/tree", json!({ "workspace": ws }))
        .await;
    let paths: Vec<_> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["lib", "lib/sub", "lib/sub/m.py", "main.py"]);
    assert_eq!(
        ada.post("/api/files/read", json!({ "workspace": ws, "path": "lib" }))
            .await
            .1["code"],
        "wrong_kind"
    );

    let (status, deleted) = ada
        .post(
            "/api/files/delete",
            json!({ "workspace": ws, "path": "lib" }),
        )
        .await;
    assert_eq!((status, deleted["deleted"].as_u64()), (200, Some(3)));
    assert_eq!(
        ada.post(
            "/api/files/delete",
            json!({ "workspace": ws, "path": "lib" })
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn uploads_take_many_files_and_folders_and_replace_existing_files() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let part = |name: &str, bytes: &[u8]| {
        reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned())
    };
    let form = reqwest::multipart::Form::new()
        .part("file", part("data/in.csv", b"a,b\n1,2\n"))
        .part("file", part("data/raw/blob.bin", &[0, 159, 146, 150]))
        .part("file", part("main.py", b"print('uploaded')\n"));
    let response = ada
        .http
        .post(ada.url(&format!("/api/files/upload?workspace={ws}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, written) = json_of(response).await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written.as_array().unwrap().len(), 3);
    assert_eq!(
        written[2]["version"], 2,
        "main.py was replaced as a new version"
    );
    let (_, blob) = ada
        .post(
            "/api/files/read",
            json!({ "workspace": ws, "path": "data/raw/blob.bin" }),
        )
        .await;
    assert_eq!(blob["data"], "AJ+Slg==");

    let evil = reqwest::multipart::Form::new().part("file", part("../escape.py", b"x"));
    let response = ada
        .http
        .post(ada.url(&format!("/api/files/upload?workspace={ws}")))
        .multipart(evil)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let empty = reqwest::multipart::Form::new().text("note", "no files");
    let response = ada
        .http
        .post(ada.url(&format!("/api/files/upload?workspace={ws}")))
        .multipart(empty)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn an_upload_over_the_size_limit_is_413() {
    let app = spawn_app_configured(|config| {
        config.limits.max_upload_bytes = 64 * 1024;
        config.limits.max_file_bytes = 16 * 1024;
    })
    .await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let big_file = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![b'x'; 20 * 1024]).file_name("big.txt"),
    );
    let response = ada
        .http
        .post(ada.url(&format!("/api/files/upload?workspace={ws}")))
        .multipart(big_file)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let big_body = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![b'x'; 100 * 1024]).file_name("big.txt"),
    );
    let response = ada
        .http
        .post(ada.url(&format!("/api/files/upload?workspace={ws}")))
        .multipart(big_body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let (_, tree) = ada
        .post("/api/files/tree", json!({ "workspace": ws }))
        .await;
    assert_eq!(tree.as_array().unwrap().len(), 1, "nothing was written");
}

#[tokio::test]
async fn a_file_downloads_raw_with_its_content_type_and_a_workspace_as_zip() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("Demo Project").await;
    ada.post("/api/files/write", json!({ "workspace": ws, "path": "src/util.py", "content": { "encoding": "utf8", "data": "X = 1\n" } })).await;
    ada.post(
        "/api/files/mkdir",
        json!({ "workspace": ws, "path": "empty" }),
    )
    .await;

    let response = ada
        .http
        .get(ada.url(&format!(
            "/api/files/download?workspace={ws}&path=src/util.py"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/x-python; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("util.py")
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.text().await.unwrap(), "X = 1\n");

    let response = ada
        .http
        .get(ada.url(&format!("/api/workspaces/download?workspace={ws}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("Demo Project.zip")
    );
    let bytes = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["empty/", "main.py", "src/", "src/util.py"]);
    let mut util = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("src/util.py").unwrap(), &mut util).unwrap();
    assert_eq!(util, "X = 1\n");
}

#[tokio::test]
async fn get_endpoints_do_not_mutate() {
    // GET-encoded API routes exist only for reads; a GET on a mutating path is refused.
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    for path in [
        "/api/users/logout",
        "/api/workspaces/create",
        "/api/files/write",
        "/api/files/delete",
        "/api/files/upload",
    ] {
        let response = ada.http.get(ada.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{path}");
    }
    assert_eq!(
        ada.post("/api/users/me", json!({})).await.0,
        200,
        "still signed in"
    );
}

/// The attack on a user's work: with gzip or br response compression the zip stream
/// panicked after its end, so every browser got a truncated archive. Now every encoding a
/// browser asks for gives the whole workspace, byte for byte.
#[tokio::test]
async fn the_workspace_zip_is_whole_under_every_accepted_encoding() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let mut files = std::collections::BTreeMap::new();
    for n in 0..40 {
        let path = format!("data/part-{n}.txt");
        let content = format!("line {n}\n").repeat(200 + n * 37);
        let (status, _) = ada
            .post("/api/files/write", json!({ "workspace": ws, "path": path, "content": { "encoding": "utf8", "data": content } }))
            .await;
        assert_eq!(status, 200);
        files.insert(path, content.into_bytes());
    }
    files.insert("main.py".into(), {
        let (_, main) = ada
            .post(
                "/api/files/read",
                json!({ "workspace": ws, "path": "main.py" }),
            )
            .await;
        main["data"].as_str().unwrap().as_bytes().to_vec()
    });
    for encoding in ["gzip", "br", "gzip, deflate, br, zstd", "identity"] {
        let response = ada
            .http
            .get(ada.url(&format!("/api/workspaces/download?workspace={ws}")))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{encoding}");
        let coding = response
            .headers()
            .get("content-encoding")
            .map(|value| value.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap().to_vec();
        // A zip is compressed already: sent as it is. Whatever was sent must decode whole.
        let bytes = match coding.as_deref() {
            None => body,
            Some("gzip") => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                    .unwrap();
                out
            }
            Some("br") => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(
                    &mut brotli_decompressor::Decompressor::new(&body[..], 4096),
                    &mut out,
                )
                .unwrap();
                out
            }
            Some(other) => panic!("unexpected content-encoding {other}"),
        };
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .unwrap_or_else(|error| panic!("{encoding}: not a whole zip: {error}"));
        let mut found = std::collections::BTreeMap::new();
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).unwrap();
            if entry.is_dir() {
                continue;
            }
            let name = entry.name().unwrap().into_owned();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content)
                .unwrap_or_else(|error| panic!("{encoding}: {name}: {error}"));
            found.insert(name, content);
        }
        assert_eq!(found, files, "{encoding}");
    }
}
