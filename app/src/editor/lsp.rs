//! The browser's end of the workspace's Python language server: messages move on the IDE
//! socket's [`LSP_CHANNEL`](model::ws::LSP_CHANNEL) (the terminal client owns the socket)
//! to and from Monaco's own LSP client, behind the thin shim `codepodLsp` in
//! `vendor/src/monaco.js`. The agent inside the sandbox runs the server and shares it
//! between tabs (`agent/src/lsp.rs`).
//!
//! Two things have to be ready, in either order: Monaco (loaded by the editor) and a socket
//! (opened by the terminal client). Each new socket is announced to the shim, which
//! replays the session to the agent, and each closed one, which fails the requests in
//! flight.

use std::{cell::RefCell, rc::Rc};

use js_sys::Function;
use model::WorkspaceId;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The shim's handle (`vendor/src/monaco.js`).
    #[derive(Clone)]
    type Shim;

    #[wasm_bindgen(js_name = codepodLsp)]
    fn shim(send: &Function, root: &str) -> Shim;

    #[wasm_bindgen(method)]
    fn receive(this: &Shim, text: &str);

    #[wasm_bindgen(method)]
    fn connected(this: &Shim);

    #[wasm_bindgen(method)]
    fn disconnected(this: &Shim);
}

/// Sends one message on the current socket.
pub type Send = Rc<dyn Fn(&[u8])>;

#[derive(Default)]
struct Bridge {
    shim: Option<Shim>,
    socket: Option<Send>,
    /// Keeps the shim's send callback alive.
    on_send: Option<Closure<dyn Fn(String)>>,
}

thread_local! {
    static BRIDGE: RefCell<Bridge> = RefCell::default();
}

/// Monaco has loaded in the IDE of `workspace`: the language client starts (at once if a
/// socket is open, else with the first).
pub fn editor_ready(workspace: WorkspaceId) {
    let on_send = Closure::<dyn Fn(String)>::new(|text: String| {
        let socket = BRIDGE.with(|bridge| bridge.borrow().socket.clone());
        if let Some(send) = socket {
            send(text.as_bytes());
        }
    });
    let shim = shim(
        on_send.as_ref().unchecked_ref(),
        &format!("file:///{workspace}"),
    );
    let open = BRIDGE.with(|bridge| {
        let mut bridge = bridge.borrow_mut();
        bridge.on_send = Some(on_send);
        bridge.shim = Some(shim.clone());
        bridge.socket.is_some()
    });
    if open {
        shim.connected();
    }
}

/// The editor went away (the IDE was left).
pub fn editor_gone() {
    BRIDGE.with(|bridge| {
        let mut bridge = bridge.borrow_mut();
        if let Some(shim) = bridge.shim.take() {
            shim.disconnected();
        }
        bridge.on_send = None;
    });
}

/// A socket to the sandbox is open (its session with the agent ready).
pub fn socket_open(send: Send) {
    let shim = BRIDGE.with(|bridge| {
        let mut bridge = bridge.borrow_mut();
        bridge.socket = Some(send);
        bridge.shim.clone()
    });
    if let Some(shim) = shim {
        shim.connected();
    }
}

/// The socket closed.
pub fn socket_closed() {
    let shim = BRIDGE.with(|bridge| {
        let mut bridge = bridge.borrow_mut();
        bridge.socket = None;
        bridge.shim.clone()
    });
    if let Some(shim) = shim {
        shim.disconnected();
    }
}

/// A message from the language server.
pub fn received(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shim = BRIDGE.with(|bridge| bridge.borrow().shim.clone());
    if let Some(shim) = shim {
        shim.receive(text);
    }
}
