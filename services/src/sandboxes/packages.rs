//! A workspace's installed packages, kept with it between sandboxes: what `pip install`
//! put under the sandbox user's `~/.local`, packed by the agent and kept in the store (not
//! with the files: never synced, never in the tree), unpacked into the next sandbox at its
//! start. Saved when it changed — checked on every reaper tick and before every stop but a
//! deletion — so that packages survive the idle cull, the lifetime cap, a restart of the
//! server and (on Kubernetes, where the store is shared) a move to another replica. Their
//! packed size counts against a quota (`CODEPOD_PACKAGES_QUOTA`); over it, the latest
//! packages are not kept and the workspace's owner is told why.

use std::sync::Arc;

use model::{Packages, WorkspaceId};
use sandbox::{AgentConnection, agent::EnvironmentSave};
use store::{EnvironmentRecord, Store};

use super::{Sandboxes, lock_ignoring_poison, runtime_error};
use crate::{Error, Result, Services, accounts::CurrentUser, now_ms};

impl Sandboxes {
    /// Where packages are kept; set once by [`Services::new`].
    pub(crate) fn keep_packages_in(&self, store: Arc<dyn Store>) {
        let _ = self.package_store.set(store);
    }

    /// Saves the running sandbox's packages if they changed since the last save. `Ok(false)`:
    /// nothing to save (unchanged, no sandbox, no store).
    pub(crate) async fn save_packages(&self, ws: WorkspaceId) -> Result<bool> {
        let Some(store) = self.package_store.get() else {
            return Ok(false);
        };
        let Ok(control) = self.control(ws).await else {
            return Ok(false);
        };
        let kept = store.environment_summary(ws).await?;
        let unless = kept
            .as_ref()
            .map(|kept| kept.signature.clone())
            .unwrap_or_default();
        let quota = self.settings.packages_quota_bytes;
        match control.save_environment(quota, &unless).await {
            Ok(EnvironmentSave::Unchanged) => Ok(false),
            Ok(EnvironmentSave::Saved {
                archive,
                signature,
                packages,
            }) => {
                lock_ignoring_poison(&self.packages_not_kept).remove(&ws);
                if archive.is_empty() {
                    if kept.is_some() {
                        store.delete_environment(ws).await?;
                    }
                    return Ok(kept.is_some());
                }
                let record = EnvironmentRecord {
                    archive,
                    signature,
                    packages,
                    updated_at: now_ms(),
                };
                store.put_environment(ws, &record).await?;
                tracing::info!(
                    workspace.id = %ws,
                    bytes = record.archive.len(),
                    packages = record.packages.len(),
                    "packages saved"
                );
                Ok(true)
            }
            Err(sandbox::Error::Agent {
                failure: sandbox::agent::Failure::TooLarge,
                message,
            }) => {
                tracing::info!(workspace.id = %ws, why = message, "packages not kept");
                lock_ignoring_poison(&self.packages_not_kept).insert(ws, message);
                Ok(false)
            }
            Err(error) => Err(runtime_error(error)),
        }
    }

    /// Saves, logging a failure (for the reaper and stops, which go on regardless).
    pub(crate) async fn save_packages_or_log(&self, ws: WorkspaceId) {
        if let Err(error) = self.save_packages(ws).await {
            tracing::warn!(workspace.id = %ws, error = %error, "could not save the packages");
        }
    }

    /// Unpacks the workspace's kept packages into its new sandbox — unless the sandbox holds
    /// them already (one that outlived a server), or packages of its own (saved next).
    pub(crate) async fn restore_packages(&self, ws: WorkspaceId, control: &AgentConnection) {
        let Some(store) = self.package_store.get() else {
            return;
        };
        let kept = match store.environment(ws).await {
            Ok(Some(kept)) => kept,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(workspace.id = %ws, error = %error, "cannot read the kept packages");
                return;
            }
        };
        let quota = self.settings.packages_quota_bytes;
        match control.save_environment(quota, &kept.signature).await {
            Ok(EnvironmentSave::Saved { archive, .. }) if archive.is_empty() => {
                match control.restore_environment(&kept.archive).await {
                    Ok(()) => tracing::info!(
                        workspace.id = %ws,
                        packages = kept.packages.len(),
                        "packages restored"
                    ),
                    Err(error) => {
                        tracing::warn!(workspace.id = %ws, error = %error, "cannot restore the packages");
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(workspace.id = %ws, error = %error, "cannot look at the sandbox's packages");
            }
        }
    }
}

impl Services {
    /// The workspace's kept packages (saved first from its running sandbox, if any).
    pub async fn packages(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<Packages> {
        self.workspace(user, ws).await?;
        self.sandboxes.save_packages(ws).await?;
        self.packages_view(ws).await
    }

    /// Removes every installed package: from the running sandbox and from what is kept.
    pub async fn clear_packages(&self, user: &CurrentUser, ws: WorkspaceId) -> Result<Packages> {
        self.workspace(user, ws).await?;
        if let Ok(control) = self.sandboxes.control(ws).await {
            control.clear_environment().await.map_err(runtime_error)?;
        }
        self.store.delete_environment(ws).await?;
        lock_ignoring_poison(&self.sandboxes.packages_not_kept).remove(&ws);
        self.packages_view(ws).await
    }

    async fn packages_view(&self, ws: WorkspaceId) -> Result<Packages> {
        let kept = self.store.environment_summary(ws).await?;
        let not_kept = lock_ignoring_poison(&self.sandboxes.packages_not_kept)
            .get(&ws)
            .cloned();
        Ok(match kept {
            Some(kept) => Packages {
                packages: kept.packages,
                size_bytes: u64::try_from(kept.size).map_err(|_| Error::NotFound)?,
                quota_bytes: self.sandboxes.settings.packages_quota_bytes,
                saved_at: Some(kept.updated_at),
                not_kept,
            },
            None => Packages {
                packages: Vec::new(),
                size_bytes: 0,
                quota_bytes: self.sandboxes.settings.packages_quota_bytes,
                saved_at: None,
                not_kept,
            },
        })
    }
}
