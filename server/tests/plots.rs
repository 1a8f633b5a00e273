//! Figures: `plt.show()` in a sandbox (matplotlib with Codepod's backend, selected in every
//! shell) reaches the IDE socket as PNGs on the figure channel, in order, several per
//! script, and a socket that connects later gets the recent ones. Real bubblewrap, real
//! agent, real matplotlib.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

mod common;

use common::{
    spawn_app,
    ws_client::{self, Received, Socket},
};
use model::ws::PLOT_CHANNEL;

/// The next figure on the socket: its id and PNG; terminal output on the way goes to `seen`.
async fn next_figure(socket: &mut Socket, seen: &mut Vec<u8>) -> (u64, Vec<u8>) {
    loop {
        match ws_client::receive(socket).await {
            Received::Data(channel, frame) if channel == PLOT_CHANNEL => {
                let (id, png) = frame.split_at(8);
                return (u64::from_be_bytes(id.try_into().unwrap()), png.to_vec());
            }
            Received::Data(_, output) => seen.extend_from_slice(&output),
            Received::Closed(code) => panic!(
                "closed ({code:?}) before a figure; the terminal said {:?}",
                String::from_utf8_lossy(seen)
            ),
            Received::Control(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_shown_in_the_sandbox_reach_the_ide_socket_in_order() {
    let app = spawn_app().await;
    let (cookie, workspace) = ws_client::user_with_workspace(&app, "plotter").await;
    let mut socket = ws_client::connect(&app, &cookie, &workspace).await;
    let terminal = ws_client::ready_with_terminal(&mut socket).await;
    // Two figures from one show(), a third from a second; the script says it is done.
    ws_client::type_in(
        &mut socket,
        terminal,
        "python3 -c 'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.figure(figsize=(3, 2))\nplt.bar([\"a\", \"b\"], [3, 5])\nplt.show()\nplt.plot([0, 1])\nplt.show()\nprint(plt.get_backend(), len(plt.get_fignums()))'\n",
    )
    .await;
    let mut figures = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        figures.push(next_figure(&mut socket, &mut seen).await);
    }
    let ids: Vec<u64> = figures.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 2, 3]);
    for (_, png) in &figures {
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    }
    // The second figure is the small one (300 × 200 at 100 dpi): its IHDR says so.
    let size = |png: &[u8]| {
        (
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
        )
    };
    assert_eq!(size(&figures[1].1), (300, 200));
    assert_eq!(size(&figures[0].1), (640, 480));
    // Shown and closed, as an interactive show() leaves them.
    if !String::from_utf8_lossy(&seen).contains("module://codepod_plots 0") {
        ws_client::output_until(&mut socket, terminal, "module://codepod_plots 0").await;
    }

    // A tab opened later (a reload) gets the recent figures.
    let mut later = ws_client::connect(&app, &cookie, &workspace).await;
    let mut ignored = Vec::new();
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(next_figure(&mut later, &mut ignored).await.0);
    }
    assert_eq!(replayed, [1, 2, 3]);
    drop((socket, later));
    app.shutdown().await.unwrap();
}
