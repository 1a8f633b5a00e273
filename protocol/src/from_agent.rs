//! What a server takes from an agent (`sandbox::agent` decodes with these): a payload limit per message type, checked from a
//! frame's header before its payload is buffered, and checks of every list and string after
//! decoding (a path is a valid `WorkspacePath` by its type). Anything over is refused: the
//! agent is the sandbox's voice, and the sandbox's user may have replaced it.

use model::{path::MAX_PATH_BYTES, ws::MAX_COMMAND};

use crate::{
    MAX_ENVIRONMENT_CHUNK, MAX_ERROR_MESSAGE, MAX_FRAME, MAX_LSP_MESSAGE, MAX_OUTPUT,
    MAX_PACKAGE_NAME, MAX_PACKAGES, MAX_PLOT, MAX_SNAPSHOT_ENTRIES, MAX_TERMINALS,
    MAX_WATCHED_CONTENT, Message, Tag,
};

/// Room for a message's varints, options and lengths around its big fields.
const SLACK: usize = 64;
/// A path as postcard writes it: length varint and bytes.
const PATH: usize = MAX_PATH_BYTES + 8;

/// The largest payload taken for each message type from an agent.
pub fn limits(tag: Option<Tag>) -> usize {
    let Some(tag) = tag else {
        // A newer agent's message: skipped, if small.
        return 1024;
    };
    match tag {
        Tag::Hello | Tag::TerminalOpened | Tag::TerminalLagged | Tag::WatchLagged => 16,
        Tag::TerminalExited | Tag::RunFinished => SLACK,
        Tag::Error => MAX_ERROR_MESSAGE + SLACK,
        Tag::Output => MAX_OUTPUT + SLACK,
        Tag::TerminalList => MAX_TERMINALS * (MAX_COMMAND + SLACK),
        Tag::FileContent | Tag::SnapshotResult => MAX_FRAME,
        Tag::FileChanged => PATH + MAX_WATCHED_CONTENT as usize + SLACK,
        Tag::FileRemoved => PATH,
        Tag::LspReceive => MAX_LSP_MESSAGE + SLACK,
        Tag::EnvironmentUnchanged => 0,
        Tag::EnvironmentSaved => MAX_PACKAGES * (MAX_PACKAGE_NAME + 8) + 128 + SLACK,
        Tag::EnvironmentData => MAX_ENVIRONMENT_CHUNK + SLACK,
        Tag::Plot => MAX_PLOT + SLACK,
        // Answers without data, and requests (which an agent has no business sending).
        Tag::Ok
        | Tag::Ping
        | Tag::Pong
        | Tag::OpenTerminal
        | Tag::Attach
        | Tag::Input
        | Tag::Resize
        | Tag::CloseTerminal
        | Tag::Run
        | Tag::ListTerminals
        | Tag::WriteFile
        | Tag::ReadFile
        | Tag::MakeDir
        | Tag::Move
        | Tag::Delete
        | Tag::Snapshot
        | Tag::Watch
        | Tag::LspSend
        | Tag::SaveEnvironment
        | Tag::ReadEnvironment
        | Tag::RestoreEnvironment
        | Tag::ClearEnvironment
        | Tag::WatchPlots => 0,
    }
}

/// Checks a decoded message's lists and strings against what an agent sends at most.
pub fn check(message: &Message) -> Result<(), String> {
    match message {
        Message::TerminalList { terminals } => {
            if terminals.len() > MAX_TERMINALS {
                return Err(format!("a list of {} terminals", terminals.len()));
            }
            if terminals.iter().any(|info| {
                info.command
                    .as_ref()
                    .is_some_and(|command| command.len() > MAX_COMMAND)
            }) {
                return Err("a terminal with an over-long command".to_owned());
            }
            Ok(())
        }
        Message::SnapshotResult {
            files, unlisted, ..
        } => {
            if files.len() + unlisted.len() > MAX_SNAPSHOT_ENTRIES {
                return Err(format!(
                    "a snapshot of {} entries",
                    files.len() + unlisted.len()
                ));
            }
            let well_formed = files.iter().all(|file| {
                if file.is_dir {
                    file.hash.is_empty()
                } else {
                    file.hash.len() == 64 && file.hash.bytes().all(|b| b.is_ascii_hexdigit())
                }
            });
            if !well_formed {
                return Err("a snapshot entry with a malformed hash".to_owned());
            }
            Ok(())
        }
        Message::FileChanged {
            data: Some(data), ..
        } if data.len() as u64 > MAX_WATCHED_CONTENT => {
            Err(format!("a change carrying {} bytes", data.len()))
        }
        Message::LspReceive { data } if data.len() > MAX_LSP_MESSAGE => {
            Err(format!("a language-server message of {} bytes", data.len()))
        }
        Message::EnvironmentSaved {
            signature,
            packages,
            ..
        } => {
            if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("an environment with a malformed signature".to_owned());
            }
            if packages.len() > MAX_PACKAGES
                || packages
                    .iter()
                    .any(|package| package.len() > MAX_PACKAGE_NAME)
            {
                return Err(format!("a list of {} packages", packages.len()));
            }
            Ok(())
        }
        Message::Plot { data, .. } if data.len() > MAX_PLOT => {
            Err(format!("a figure of {} bytes", data.len()))
        }
        Message::EnvironmentData { data } if data.len() > MAX_ENVIRONMENT_CHUNK => {
            Err(format!("an environment piece of {} bytes", data.len()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_an_agent_gives_fits_its_limit() {
        // The largest real ones: a full terminal list, the whole scrollback.
        let list = Message::TerminalList {
            terminals: (0..MAX_TERMINALS as u32)
                .map(|n| model::TerminalInfo {
                    terminal: model::TerminalId(n),
                    command: Some("x".repeat(MAX_COMMAND)),
                    exited: Some(-1),
                })
                .collect(),
        };
        let output = Message::Output {
            terminal: model::TerminalId(u32::MAX),
            data: vec![0; MAX_OUTPUT],
        };
        for message in [list, output] {
            let mut bytes = Vec::new();
            crate::encode(&crate::Frame::new(u32::MAX, message.clone()), &mut bytes)
                .unwrap_or_default();
            let payload = bytes.len() - 4 - crate::HEADER_LEN;
            assert!(
                payload <= limits(Some(message.tag())),
                "{:?}: {payload}",
                message.tag()
            );
            assert_eq!(check(&message), Ok(()));
        }
    }
}
