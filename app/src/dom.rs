//! Small DOM questions the components ask about events.

/// Whether an event happened inside an element matching `selector` (its target or an
/// ancestor of it). Always false on the server, where no event happens.
pub fn event_within(event: &leptos::web_sys::Event, selector: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            .and_then(|element| element.closest(selector).ok().flatten())
            .is_some()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (event, selector);
        false
    }
}
