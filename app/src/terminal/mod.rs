//! The terminal panel: tabs of shells running in the workspace's sandbox, drawn by xterm.js,
//! over the IDE WebSocket (`/ws/workspaces/{id}`).
//!
//! The server renders the panel's frame; in the browser, after hydration, [`client`] loads
//! xterm.js, connects, reattaches to the workspace's terminals (their scrollback replays)
//! or opens one, and reconnects with backoff when the socket drops.

#[cfg(feature = "hydrate")]
mod client;
#[cfg(feature = "hydrate")]
mod xterm;

use std::rc::Rc;

use leptos::prelude::*;
use model::{
    WorkspaceId,
    ws::{ServerMessage, TerminalId},
};

/// One terminal tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tab {
    pub terminal: TerminalId,
    pub title: String,
    pub exited: Option<i32>,
    /// The command a Run tab runs (`None`: a shell).
    pub command: Option<String>,
}

/// The state of the connection to the sandbox, shown in the panel and the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Starting,
    Ready,
    Reconnecting {
        attempt: u32,
    },
    /// Stopped by the idle cull, its lifetime, or a stop: no automatic reconnect.
    Stopped,
    /// The session ended (signed out here or elsewhere, password changed, account deleted):
    /// sign in again.
    SignedOut,
    Failed(String),
}

impl Link {
    pub fn label(&self) -> String {
        match self {
            Self::Connecting => "connecting…".into(),
            Self::Starting => "starting sandbox…".into(),
            Self::Ready => "sandbox ready".into(),
            Self::Reconnecting { .. } => "reconnecting…".into(),
            Self::Stopped => "sandbox stopped".into(),
            Self::SignedOut => "signed out — sign in again to go on".into(),
            Self::Failed(reason) => format!("sandbox failed: {reason}"),
        }
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn can_restart(&self) -> bool {
        matches!(self, Self::Stopped | Self::Failed(_))
    }

    /// The banner over the terminal for this state: a sentence, what to do, and the one
    /// action's label (`None`: the terminal is usable, no banner).
    fn banner(&self, typed: bool) -> Option<(String, &'static str, Option<&'static str>)> {
        match self {
            Self::Ready | Self::Connecting => None,
            Self::Starting => Some((
                self.label(),
                "Your files are being copied in; the terminal is ready in a moment.",
                None,
            )),
            Self::Reconnecting { .. } => Some((
                self.label(),
                "The connection to the sandbox dropped. Your files are saved; it is tried again on its own.",
                Some("Reconnect now"),
            )),
            Self::Stopped => Some((
                self.label(),
                if typed {
                    "You typed into the terminal while the sandbox was stopped; nothing was sent. Start it to go on — your files and installed packages are kept."
                } else {
                    "It stopped after a while without activity, at its time limit, or because it was stopped. Your files and installed packages are kept."
                },
                Some("Start sandbox"),
            )),
            Self::Failed(_) => Some((
                self.label(),
                if typed {
                    "You typed into the terminal while the sandbox was down; nothing was sent. Your files are kept."
                } else {
                    "Nothing of your work is lost; your files are kept."
                },
                Some("Try again"),
            )),
            Self::SignedOut => Some((self.label(), "Your files are saved.", None)),
        }
    }
}

/// What the panel's buttons ask of the browser-side client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    NewTerminal,
    Select(TerminalId),
    Close(TerminalId),
    /// Connect again after the sandbox stopped or failed (starts it).
    Restart,
    /// Run a command in a terminal tab of its own (the Run button): the tab that ran the
    /// same command before is replaced, in its place.
    Run(String),
    /// The user is working (typing in the editor): keeps the sandbox from the idle stop.
    Activity,
    /// `cd` a shell into a folder of the workspace (`""`: its root): the active shell, or
    /// the first live one, or a new one.
    Reveal(String),
}

type Dispatch = Rc<dyn Fn(Command)>;

/// What makes two Run commands the same run: the program and its script, without the
/// script's arguments (`python3 'a b.py' --n 5` → `python3 'a b.py'`). The script is
/// single-quoted as the IDE quotes it (`'` inside written `'\''`).
pub fn run_key(command: &str) -> &str {
    let Some(rest) = command.strip_prefix("python3 '") else {
        return command;
    };
    let start = command.len() - rest.len();
    let mut at = 0;
    while let Some(quote) = rest[at..].find('\'') {
        let end = at + quote;
        if rest[end..].starts_with("'\\''") {
            at = end + 4;
        } else {
            return &command[..start + end + 1];
        }
    }
    command
}

/// The terminal panel of a workspace. `link` is written with the connection's state.
///
/// `on_files` gets the socket's file events (`file_changed`, `file_removed`,
/// `files_resync`, `files_not_kept`); a command put in `run` runs in a new terminal tab;
/// each change of `activity` tells the server the user is working; figures shown in the
/// sandbox go to `plots`, shown beside the terminal; a traceback's `File "x.py", line N`
/// clicked goes to `on_open`.
#[component]
pub fn TerminalPanel(
    workspace: WorkspaceId,
    link: RwSignal<Link>,
    on_files: Callback<ServerMessage>,
    run: RwSignal<Option<String>>,
    activity: RwSignal<u64>,
    plots: crate::plots::PlotsState,
    on_open: Callback<(String, u32)>,
    reveal: RwSignal<Option<String>>,
) -> impl IntoView {
    let tabs = RwSignal::new(Vec::<Tab>::new());
    // Keys typed into a terminal while the sandbox was down (the banner then says so).
    let typed_while_down = RwSignal::new(false);
    let active = RwSignal::new(None::<TerminalId>);
    let body = NodeRef::<leptos::html::Div>::new();
    // Set in the browser once the client runs; the server never dispatches.
    let dispatch = crate::browser_slot::BrowserSlot::<Dispatch>::new();
    let run_command = move |command: Command| {
        dispatch.with(|dispatch| {
            if let Some(dispatch) = dispatch {
                dispatch(command);
            }
        });
    };

    #[cfg(feature = "hydrate")]
    {
        let started = StoredValue::new_local(None::<Rc<client::Client>>);
        Effect::new(move |_| {
            let Some(element) = body.get() else { return };
            if started.with_value(Option::is_some) {
                return;
            }
            let element: web_sys::HtmlElement = element.into();
            let panel = client::Panel {
                tabs,
                active,
                link,
                on_files,
                plots,
                on_open,
                typed_while_down,
            };
            let client = client::Client::new(workspace, element, panel);
            let handle = client.clone();
            dispatch.set(Some(Rc::new(move |command| handle.command(command))));
            started.set_value(Some(client.clone()));
            leptos::task::spawn_local(async move { client.start().await });
        });
        on_cleanup(move || {
            dispatch.set(None);
            if let Some(client) = started.try_update_value(Option::take).flatten() {
                client.dispose();
            }
        });
    }
    // The Run button's requests.
    Effect::new(move |_| {
        if let Some(command) = run.get() {
            run.set(None);
            run_command(Command::Run(command));
        }
    });
    // The tree's "Open in Terminal".
    Effect::new(move |_| {
        if let Some(folder) = reveal.get() {
            reveal.set(None);
            run_command(Command::Reveal(folder));
        }
    });
    // A fresh start forgets that keys were typed.
    Effect::new(move |_| {
        if link.get() == Link::Ready {
            typed_while_down.set(false);
        }
    });
    let banner = move || link.with(|link| link.banner(typed_while_down.get()));
    let action = NodeRef::<leptos::html::Button>::new();
    // Typing into the stopped terminal moves the focus to the banner's button: Enter starts.
    Effect::new(move |_| {
        if typed_while_down.get()
            && let Some(button) = action.get_untracked()
        {
            let _ = button.focus();
        }
    });
    Effect::new(move |first: Option<()>| {
        activity.track();
        if first.is_some() {
            run_command(Command::Activity);
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (workspace, body, on_files, on_open);

    view! {
        <div class="panel-tabs" role="tablist" aria-label="Terminals">
            <For
                each=move || tabs.get()
                key=|tab| (tab.terminal, tab.exited, tab.title.clone())
                let:tab
            >
                {
                    let terminal = tab.terminal;
                    view! {
                        <span
                            class="panel-tab"
                            role="tab"
                            class:active=move || active.get() == Some(terminal)
                            class:exited=tab.exited.is_some()
                            class:failed=tab.command.is_some() && tab.exited.is_some_and(|status| status != 0)
                            aria-selected=move || (active.get() == Some(terminal)).to_string()
                            data-terminal=terminal.0
                            on:click=move |_| run_command(Command::Select(terminal))
                        >
                            {tab.title.clone()}
                            <button
                                type="button"
                                class="tab-close"
                                title="Close terminal"
                                aria-label="Close terminal"
                                on:click=move |event| {
                                    event.stop_propagation();
                                    run_command(Command::Close(terminal));
                                }
                            >
                                "×"
                            </button>
                        </span>
                    }
                }
            </For>
            <button
                type="button"
                class="new-terminal"
                title="New terminal"
                aria-label="New terminal"
                disabled=move || link.get() != Link::Ready
                on:click=move |_| run_command(Command::NewTerminal)
            >
                "+"
            </button>
        </div>
        <div class="terminal-row">
            <div
                class="sandbox-banner"
                role="status"
                data-link=move || format!("{:?}", link.get())
                hidden=move || banner().is_none()
            >
                <span
                    class="icon banner-icon"
                    class=("icon-loading", move || matches!(link.get(), Link::Starting | Link::Reconnecting { .. }))
                    class=("icon-debug-stop", move || link.get() == Link::Stopped)
                    class=("icon-warning", move || matches!(link.get(), Link::Failed(_) | Link::SignedOut))
                    aria-hidden="true"
                ></span>
                <div class="banner-text">
                    <strong class="link-state" data-link=move || format!("{:?}", link.get())>
                        {move || match link.get() {
                            Link::Ready => String::new(),
                            other => other.label(),
                        }}
                    </strong>
                    <p class="banner-detail">
                        {move || banner().map(|(_, detail, _)| detail).unwrap_or_default()}
                    </p>
                </div>
                <button
                    type="button"
                    class="restart primary"
                    node_ref=action
                    hidden=move || banner().and_then(|(_, _, action)| action).is_none()
                    on:click=move |_| run_command(Command::Restart)
                >
                    {move || banner().and_then(|(_, _, action)| action).unwrap_or_default()}
                </button>
                <a
                    class="sign-in-again button primary"
                    href=format!("/signin?next=%2Fw%2F{workspace}")
                    hidden=move || link.get() != Link::SignedOut
                >
                    "Sign in"
                </a>
            </div>
            <div class="terminal-body" node_ref=body></div>
            <crate::plots::PlotsPane state=plots />
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::run_key;

    #[test]
    fn a_run_is_known_by_its_script_whatever_its_arguments() {
        assert_eq!(run_key("python3 'main.py'"), "python3 'main.py'");
        assert_eq!(
            run_key("python3 'main.py' --n 5 'x y'"),
            "python3 'main.py'"
        );
        assert_eq!(run_key("python3 'it'\\''s.py' -v"), "python3 'it'\\''s.py'");
        assert_eq!(run_key("bash"), "bash");
        assert_eq!(run_key("python3 'unterminated"), "python3 'unterminated");
    }
}
