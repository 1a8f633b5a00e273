//! The browser entry point. `hydrate()` attaches the Leptos app to the server-rendered page
//! (or, on the dashboard, keeps its plain HTML current: `app::start`).

use wasm_bindgen::prelude::wasm_bindgen;

/// Called by the hydration script the server embeds in every page.
#[wasm_bindgen]
pub fn hydrate() {
    // A panic stops the wasm for good: say so on the page too, not only in the console.
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        app::crashed::show();
    }));
    app::start();
}
