//! Reactive helpers the views share.

use leptos::prelude::*;

/// A value computed from signals and resources: a [`Memo`] in the browser (recomputed only
/// when what it reads changes, so the views that read it re-render only when it does), and on
/// the server a derived signal, recomputed on every read.
///
/// Why not a memo on the server: a resource that finishes loading there wakes the
/// `<Suspense>`/`<Transition>` waiting for it (possibly on another of the runtime's threads)
/// before it marks its subscribers dirty (reactive_graph 0.2, `ArcAsyncDerived::notify_subs`).
/// A memo read in that moment still holds what it computed while the resource was loading, so
/// the server could stream, say, a page without its list — and the browser, hydrating from
/// the loaded value, then finds no element where it expects the list and stops. The server
/// renders a page once, so a memo saves little there: the cost is a recomputation per read.
/// That is small: the tree's rows come from a `LocalResource`, which never loads on the
/// server (its rows are empty there).
pub fn memo<T>(compute: impl Fn() -> T + Send + Sync + 'static) -> Signal<T>
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    #[cfg(feature = "ssr")]
    {
        Signal::derive(compute)
    }
    #[cfg(not(feature = "ssr"))]
    {
        Memo::new(move |_| compute()).into()
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn on_the_server_a_read_never_lags_what_it_reads() {
        let owner = Owner::new();
        owner.set();
        let source = RwSignal::new(1);
        let doubled = memo(move || source.get() * 2);
        assert_eq!(doubled.get_untracked(), 2);
        // The value changes, and the notification has not arrived yet: what a resource that
        // has stored its value but not yet marked its subscribers dirty looks like.
        source.update_untracked(|value| *value = 5);
        assert_eq!(doubled.get_untracked(), 10);
    }
}
