//! The signal dispositions the agent's shells start with.
//!
//! A process started with a signal ignored passes that on through `exec` to everything it
//! starts — `nohup codepod &`, `codepod &` in a script and some service managers start the
//! server so — and bash keeps a signal that was ignored at its start ignored for its jobs:
//! ^C would stop nothing in any terminal. A signal with a handler goes back to its default
//! on `exec` instead, so the agent handles every signal a shell's jobs rely on, and its
//! shells start with the defaults whatever the agent inherited.

use nix::sys::signal::Signal as Number;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The agent's handlers. It stops on the signals that end a process by default, through
/// [`Signals::stop`]; the job-control and user signals it ignores itself.
pub struct Signals {
    hangup: Signal,
    interrupt: Signal,
    quit: Signal,
    terminate: Signal,
    _ignored: Vec<Signal>,
}

/// Signals the agent ignores but its shells' jobs must get at their default.
const IGNORED: [Number; 6] = [
    Number::SIGTSTP,
    Number::SIGTTIN,
    Number::SIGTTOU,
    Number::SIGUSR1,
    Number::SIGUSR2,
    Number::SIGALRM,
];

impl Signals {
    /// Installs the handlers; call it before starting any shell. Held without calling
    /// [`Signals::stop`], every one of them is caught and dropped (what `measure` does while
    /// it waits for its program).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
            interrupt: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            terminate: signal(SignalKind::terminate())?,
            _ignored: IGNORED
                .iter()
                .map(|number| signal(SignalKind::from_raw(*number as i32)))
                .collect::<std::io::Result<_>>()?,
        })
    }

    /// Waits for a signal that should stop the agent; returns its name.
    pub async fn stop(&mut self) -> &'static str {
        tokio::select! {
            _ = self.hangup.recv() => "SIGHUP",
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.quit.recv() => "SIGQUIT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
