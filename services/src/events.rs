//! File events per workspace, for every open IDE tab: a save through the API, a change the
//! sandbox reported, a move or delete. Bounded broadcast channels; a tab that falls behind
//! is told to reload its tree rather than being buffered for.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use model::{NotKept, WorkspaceId};
use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it must resync.
pub const EVENT_QUEUE: usize = 256;

/// Something changed at `path` in a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEvent {
    /// Created or written; `version` is the file's new version (`None` for a folder).
    Changed { path: String, version: Option<i64> },
    /// Deleted, or moved away.
    Removed { path: String },
    /// Many files changed at once (a resync): reload the tree and check open files.
    Resync,
    /// Changes made inside the sandbox were not kept.
    NotKept(NotKept),
}

/// The channels, one per workspace that has subscribers.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<HashMap<WorkspaceId, broadcast::Sender<FileEvent>>>>);

impl Events {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, broadcast::Sender<FileEvent>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Events of `ws` from now on.
    pub fn subscribe(&self, ws: WorkspaceId) -> broadcast::Receiver<FileEvent> {
        self.lock()
            .entry(ws)
            .or_insert_with(|| broadcast::channel(EVENT_QUEUE).0)
            .subscribe()
    }

    /// Tells every subscriber of `ws`; forgets the channel once nobody listens.
    pub fn publish(&self, ws: WorkspaceId, event: FileEvent) {
        let mut channels = self.lock();
        if let Some(sender) = channels.get(&ws)
            && sender.send(event).is_err()
        {
            channels.remove(&ws);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_of_a_workspace_get_its_events_only() {
        let events = Events::default();
        let (a, b) = (
            WorkspaceId(uuid::Uuid::from_u128(1)),
            WorkspaceId(uuid::Uuid::from_u128(2)),
        );
        let mut of_a = events.subscribe(a);
        let changed = FileEvent::Changed {
            path: "main.py".into(),
            version: Some(2),
        };
        events.publish(b, FileEvent::Removed { path: "x".into() });
        events.publish(a, changed.clone());
        assert_eq!(of_a.recv().await.ok(), Some(changed));
        drop(of_a);
        events.publish(a, FileEvent::Removed { path: "y".into() });
        assert!(
            events.lock().is_empty(),
            "channels without subscribers are dropped"
        );
    }
}
