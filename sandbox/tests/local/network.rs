//! The network: none at all by default, not even the host's loopback or the metadata
//! address; with egress, only public addresses, through the host's filtering proxy, reached
//! over a socket pair handed to the agent (no path shared with the host).

use super::*;

#[tokio::test]
async fn there_is_no_network_not_even_to_the_host_or_the_metadata_address() {
    let f = sandbox().await;
    // A listener on the host's loopback that the sandbox must not reach.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut shell = f.session().await;
    let out = run(
        &mut shell,
        &format!("timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'"),
    )
    .await;
    assert_ne!(
        status_of(&out),
        0,
        "connected to the host's loopback: {out}"
    );
    let out = run(
        &mut shell,
        "timeout 5 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80'",
    )
    .await;
    assert_ne!(status_of(&out), 0, "reached the metadata address: {out}");
    let out = run(
        &mut shell,
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
    f.stop().await;
}

/// What the sandbox's proxy answers to `CONNECT target` (its status line).
async fn proxy_connect(shell: &mut TerminalSession, target: &str) -> String {
    run(
        shell,
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
    let mut shell = f.session().await;

    // Shells are pointed at the proxy; there is still no route of their own.
    let out = run(&mut shell, "echo proxy=$https_proxy").await;
    assert!(out.contains("proxy=http://127.0.0.1:3128"), "{out}");
    let out = run(
        &mut shell,
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
        let out = proxy_connect(&mut shell, &target).await;
        assert!(out.contains("403 Forbidden"), "CONNECT {target}: {out}");
    }
    // Plain HTTP in absolute form, to the host by name: refused too.
    let out = run(
        &mut shell,
        &format!(
            "timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128; printf \"GET http://localhost:{port}/ HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n\" >&3; head -1 <&3'"
        ),
    )
    .await;
    assert!(out.contains("403 Forbidden"), "GET via the proxy: {out}");
    // Garbage is a 400, and the proxy goes on serving.
    let out = run(
        &mut shell,
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
    f.stop().await;
}

#[tokio::test]
async fn without_egress_there_is_no_proxy_either() {
    let f = sandbox().await;
    let mut shell = f.session().await;
    let out = run(&mut shell, "echo proxy=[$https_proxy]").await;
    assert!(out.contains("proxy=[]"), "{out}");
    let out = run(
        &mut shell,
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128'",
    )
    .await;
    assert_ne!(
        status_of(&out),
        0,
        "something listens on the proxy port: {out}"
    );
    f.stop().await;
}

/// Needs the package index (PyPI), which the setup needs anyway.
#[tokio::test]
async fn with_egress_pip_install_user_works_through_the_proxy() {
    let f = sandbox_configured(|config| config.egress = true).await;
    let mut shell = f.session().await;
    let out = run(
        &mut shell,
        "pip install --user --no-deps --disable-pip-version-check --quiet six==1.17.0 && python3 -c 'import six; print(\"at\", six.__file__)'",
    )
    .await;
    assert_eq!(status_of(&out), 0, "{out}");
    assert!(out.contains("at /home/user/.local/"), "{out}");
    f.stop().await;
}
