//! The status bar's "Packages" button and its panel: what `pip install` put in the
//! workspace, kept with it between sandboxes — names, packed size against the quota, why the
//! latest were not kept (over it), and a way to remove them all.

use leptos::prelude::*;
use model::{Packages, WorkspaceId};

use super::api::{clear_packages, workspace_packages};

/// `12.3 MiB` / `640 KiB`.
fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes.is_multiple_of(1024 * 1024) && bytes > 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes as f64 >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[component]
pub fn PackagesButton(workspace: WorkspaceId) -> impl IntoView {
    let open = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let packages = RwSignal::new(None::<Result<Packages, String>>);
    let load = Action::new(move |_: &()| async move {
        packages.set(Some(
            workspace_packages(workspace)
                .await
                .map_err(|error| error.to_string()),
        ));
    });
    let clear = Action::new(move |_: &()| async move {
        confirming.set(false);
        packages.set(Some(
            clear_packages(workspace)
                .await
                .map_err(|error| error.to_string()),
        ));
    });
    let toggle = move |_| {
        let opening = !open.get_untracked();
        open.set(opening);
        confirming.set(false);
        if opening {
            load.dispatch(());
        }
    };
    let busy = move || load.pending().get() || clear.pending().get();
    view! {
        <button
            type="button"
            id="packages"
            class="status-button"
            title="Packages installed with pip, kept with this workspace"
            aria-expanded=move || open.get().to_string()
            on:click=toggle
        >
            "Packages"
        </button>
        <div class="packages-panel" role="dialog" aria-label="Installed packages" hidden=move || !open.get()>
            <header>
                <strong>"Installed packages"</strong>
                <button type="button" class="packages-close" aria-label="Close" on:click=move |_| open.set(false)>
                    "×"
                </button>
            </header>
            <p class="packages-help">
                "What "<code>"pip install"</code>" puts in this workspace is kept with it and comes back with every new sandbox."
            </p>
            {move || match packages.get() {
                None => view! { <p class="packages-state">"Loading…"</p> }.into_any(),
                Some(Err(error)) => view! { <p class="packages-state problem">{error}</p> }.into_any(),
                Some(Ok(list)) => {
                    let count = list.packages.len();
                    let used = format!("{} of {} kept", size(list.size_bytes), size(list.quota_bytes));
                    view! {
                        {list.not_kept.clone().map(|why| view! { <p class="packages-state problem" role="alert">{why}</p> })}
                        <p class="packages-state">
                            {if count == 0 { "No packages installed.".to_owned() } else { format!("{count} packages · {used}") }}
                        </p>
                        <ul class="packages-list">
                            {list.packages.into_iter().map(|package| view! { <li>{package}</li> }).collect_view()}
                        </ul>
                        <footer hidden=count == 0>
                            <button
                                type="button"
                                id="packages-clear"
                                hidden=move || confirming.get()
                                on:click=move |_| confirming.set(true)
                            >
                                "Remove all"
                            </button>
                            <span class="packages-confirm" hidden=move || !confirming.get()>
                                {format!("Remove all {count} packages? ")}
                                <button type="button" id="packages-clear-confirm" class="danger" on:click=move |_| { clear.dispatch(()); }>
                                    "Remove"
                                </button>
                                <button type="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                            </span>
                        </footer>
                    }
                        .into_any()
                }
            }}
            <p class="packages-state" hidden=move || !busy()>"Working…"</p>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_kib_or_mib() {
        assert_eq!(size(0), "0 KiB");
        assert_eq!(size(1000), "1 KiB");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(size(256 * 1024 * 1024), "256 MiB");
    }
}
