//! The Plots pane: figures programs in the sandbox showed (`plt.show()` from Run or from
//! `python3 plot.py` in the terminal), beside the terminal. They come over the IDE socket's
//! figure channel (`model::ws::PLOT_CHANNEL`), newest shown, earlier ones a click away, each
//! saved with one click (as `figure-N.png`).

use leptos::prelude::*;

/// Figures kept in the page; older ones are let go.
pub const KEPT: usize = 50;

/// One figure: its id in the sandbox and a `blob:` URL of its PNG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub id: u64,
    pub url: String,
}

/// The pane's state, shared by the socket (which adds figures) and the view.
#[derive(Debug, Clone, Copy)]
pub struct PlotsState {
    pub figures: RwSignal<Vec<Figure>>,
    /// Index into `figures` of the one shown.
    pub shown: RwSignal<usize>,
    /// Closed by the user; opened again by the next figure.
    pub open: RwSignal<bool>,
}

impl PlotsState {
    pub fn new() -> Self {
        Self {
            figures: RwSignal::new(Vec::new()),
            shown: RwSignal::new(0),
            open: RwSignal::new(false),
        }
    }

    /// Takes one frame of the figure channel: an 8-byte id, then a PNG. A figure already
    /// here (replayed after a reconnect) is not added twice.
    #[cfg(feature = "hydrate")]
    pub fn received(&self, frame: &[u8]) {
        let Some((id, png)) = frame.split_first_chunk::<8>() else {
            return;
        };
        let id = u64::from_be_bytes(*id);
        if self
            .figures
            .with_untracked(|figures| figures.iter().any(|figure| figure.id == id))
        {
            return;
        }
        let Some(url) = blob_url(png, "image/png") else {
            return;
        };
        self.figures.update(|figures| {
            figures.push(Figure { id, url });
            figures.sort_by_key(|figure| figure.id);
            while figures.len() > KEPT {
                let gone = figures.remove(0);
                let _ = web_sys::Url::revoke_object_url(&gone.url);
            }
        });
        let last = self.figures.with_untracked(Vec::len).saturating_sub(1);
        self.shown.set(last);
        self.open.set(true);
    }

    fn clear(&self) {
        #[cfg(feature = "hydrate")]
        for figure in self.figures.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&figure.url);
        }
        self.figures.set(Vec::new());
        self.shown.set(0);
        self.open.set(false);
    }
}

impl Default for PlotsState {
    fn default() -> Self {
        Self::new()
    }
}

/// A `blob:` URL of `bytes` typed `mime` (revoke it when done).
#[cfg(feature = "hydrate")]
pub(crate) fn blob_url(bytes: &[u8], mime: &str) -> Option<String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

#[component]
pub fn PlotsPane(state: PlotsState) -> impl IntoView {
    let PlotsState {
        figures,
        shown,
        open,
    } = state;
    let count = move || figures.with(Vec::len);
    let current = move || figures.with(|figures| figures.get(shown.get()).cloned());
    view! {
        <aside
            class="plots-pane"
            aria-label="Plots"
            hidden=move || !open.get() || count() == 0
        >
            <div class="plots-toolbar">
                <button
                    type="button"
                    class="plots-previous"
                    aria-label="Previous figure"
                    title="Previous figure"
                    disabled=move || shown.get() == 0
                    on:click=move |_| shown.update(|shown| *shown = shown.saturating_sub(1))
                >
                    "‹"
                </button>
                <span class="plots-position">
                    {move || format!("Figure {} of {}", shown.get() + 1, count())}
                </span>
                <button
                    type="button"
                    class="plots-next"
                    aria-label="Next figure"
                    title="Next figure"
                    disabled=move || { shown.get() + 1 >= count() }
                    on:click=move |_| shown.update(|shown| *shown = (*shown + 1).min(count().saturating_sub(1)))
                >
                    "›"
                </button>
                <a
                    class="plots-save"
                    href=move || current().map(|figure| figure.url).unwrap_or_default()
                    download=move || current().map(|figure| format!("figure-{}.png", figure.id)).unwrap_or_default()
                    title="Save this figure as a PNG"
                >
                    "Save PNG"
                </a>
                <button type="button" class="plots-clear" title="Forget every figure" on:click=move |_| state.clear()>
                    "Clear"
                </button>
                <button
                    type="button"
                    class="plots-close"
                    aria-label="Close the plots"
                    title="Close (the next figure opens it again)"
                    on:click=move |_| open.set(false)
                >
                    "×"
                </button>
            </div>
            <div class="plots-view">
                {move || current().map(|figure| view! {
                    <img src=figure.url alt=format!("Figure {}", figure.id) />
                })}
            </div>
        </aside>
    }
    .into_any()
}
