//! The signal dispositions the agent's shells start with.
//!
//! A process started with a signal ignored passes that on through `exec` to everything it
//! starts — `nohup codepod &`, `codepod &` in a script and some service managers start the
//! server so — and bash keeps a signal that was ignored at its start ignored for its jobs:
//! ^C would stop nothing in any terminal. A signal with a handler goes back to its default
//! on `exec` instead, so the agent handles every signal a shell's jobs rely on, and its
//! shells start with the defaults whatever the agent inherited.

use std::task::Poll;

use nix::sys::signal::Signal as Number;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signals that end a process by default: the agent stops on them.
const STOPPING: [Number; 4] = [
    Number::SIGHUP,
    Number::SIGINT,
    Number::SIGQUIT,
    Number::SIGTERM,
];

/// Signals the agent ignores but its shells' jobs must get at their default.
const IGNORED: [Number; 6] = [
    Number::SIGTSTP,
    Number::SIGTTIN,
    Number::SIGTTOU,
    Number::SIGUSR1,
    Number::SIGUSR2,
    Number::SIGALRM,
];

/// The agent's handlers, for every signal in [`STOPPING`] and [`IGNORED`], in that order.
pub struct Signals {
    handlers: Vec<(Number, Signal)>,
}

impl Signals {
    /// Installs the handlers; call it before starting any shell. Held without waiting on
    /// them, every one of them is caught and dropped (what `measure` does while it waits
    /// for its program).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            handlers: STOPPING
                .iter()
                .chain(&IGNORED)
                .map(|&number| Ok((number, signal(SignalKind::from_raw(number as i32))?)))
                .collect::<std::io::Result<_>>()?,
        })
    }

    /// Waits for a signal that should stop the agent; returns it.
    pub async fn stop(&mut self) -> Number {
        self.next(STOPPING.len()).await
    }

    /// Waits for any of the handled signals; returns it.
    pub async fn any(&mut self) -> Number {
        self.next(self.handlers.len()).await
    }

    /// The next signal among the first `count` handlers.
    async fn next(&mut self, count: usize) -> Number {
        std::future::poll_fn(|cx| {
            for (number, handler) in &mut self.handlers[..count] {
                if handler.poll_recv(cx).is_ready() {
                    return Poll::Ready(*number);
                }
            }
            Poll::Pending
        })
        .await
    }
}
