//! What the agent does when it is the first process of its PID namespace: a sandbox pod's
//! container on Kubernetes starts it as PID 1.
//!
//! The first process inherits every orphan: a background job whose shell exited, a
//! daemon a user's script started. Each one that ends stays a zombie until its parent
//! waits for it, and the agent's runtime waits only for the children it started itself
//! (reaping others with `waitpid(-1)` would steal its shells' statuses). So PID 1 starts
//! the agent proper as its child and does what an init does (as `tini` would): waits for
//! every child, passes on the signals meant for the agent, and exits as the agent did.

use std::process::ExitCode;

use nix::{
    errno::Errno,
    sys::{
        signal::kill,
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};
use tokio::signal::unix::{SignalKind, signal};

use crate::signals::Signals;

/// True when this process is the first of its PID namespace.
pub fn is_first_process() -> bool {
    std::process::id() == 1
}

/// Starts this binary again with the same arguments as a child, reaps every process that
/// ends under this one, and returns the child's exit code (128 + the signal that killed it).
#[tokio::main(flavor = "current_thread")]
pub async fn supervise() -> std::io::Result<ExitCode> {
    // Handlers before the child exists: the first process gets no signal it has no handler
    // for, and SIGCHLD may have been ignored by whoever started this one (then children
    // would vanish without a status). The child starts with them all at their defaults.
    let mut children = signal(SignalKind::child())?;
    let mut signals = Signals::install()?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .spawn()?;
    let agent = Pid::from_raw(i32::try_from(child.id()).map_err(std::io::Error::other)?);
    loop {
        tokio::select! {
            number = signals.any() => {
                // Passed on: the kubelet's SIGTERM, whatever an operator sends. The agent
                // may have ended already; its status comes with SIGCHLD.
                let _ = kill(agent, number);
            }
            _ = children.recv() => {
                if let Some(code) = reap(agent)? {
                    return Ok(code);
                }
            }
        }
    }
}

/// Waits for every child that has ended (one SIGCHLD may stand for several); the agent's
/// exit code once it is among them.
fn reap(agent: Pid) -> std::io::Result<Option<ExitCode>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == agent => return Ok(Some(exit_code(code))),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == agent => {
                return Ok(Some(exit_code(128 + signal as i32)));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}
