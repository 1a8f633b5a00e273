//! Hand-written bindings for the parts of `@xterm/xterm` 6 and its fit and web-links addons
//! that Codepod uses. The vendor bundle (`vendor/src/xterm.js`) puts the classes on
//! `globalThis.CodepodXterm`; [`crate::vendor::load`] loads it before any of this is called.

use js_sys::{Object, Reflect, Uint8Array};

pub use crate::vendor::object;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `CodepodXterm.Terminal`.
    #[wasm_bindgen(js_namespace = CodepodXterm)]
    pub type Terminal;

    #[wasm_bindgen(constructor, js_namespace = CodepodXterm)]
    pub fn new(options: &Object) -> Terminal;

    #[wasm_bindgen(method)]
    pub fn open(this: &Terminal, parent: &web_sys::HtmlElement);

    /// Writes bytes (UTF-8 and escape sequences, as the PTY produced them).
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_bytes(this: &Terminal, data: &Uint8Array);

    /// Writes bytes; `callback` runs once xterm.js has parsed them (and all before them).
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_bytes_then(this: &Terminal, data: &Uint8Array, callback: &js_sys::Function);

    #[wasm_bindgen(method, js_name = write)]
    pub fn write_str(this: &Terminal, data: &str);

    /// Clears the screen and scrollback (before a replay).
    #[wasm_bindgen(method)]
    pub fn reset(this: &Terminal);

    #[wasm_bindgen(method)]
    pub fn focus(this: &Terminal);

    /// The live options object: setting a property on it applies it.
    #[wasm_bindgen(method, getter)]
    pub fn options(this: &Terminal) -> Object;

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Terminal);

    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &Terminal) -> u16;

    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &Terminal) -> u16;

    #[wasm_bindgen(method, js_name = hasSelection)]
    pub fn has_selection(this: &Terminal) -> bool;

    #[wasm_bindgen(method, js_name = getSelection)]
    pub fn get_selection(this: &Terminal) -> String;

    #[wasm_bindgen(method, js_name = loadAddon)]
    pub fn load_addon(this: &Terminal, addon: &JsValue);

    /// Keys typed and text pasted, as a string to send to the PTY.
    #[wasm_bindgen(method, js_name = onData)]
    pub fn on_data(this: &Terminal, listener: &Closure<dyn FnMut(String)>) -> Disposable;

    /// The grid changed size: `{ cols, rows }`.
    #[wasm_bindgen(method, js_name = onResize)]
    pub fn on_resize(this: &Terminal, listener: &Closure<dyn FnMut(JsValue)>) -> Disposable;

    /// Makes `File "x.py", line N` in the terminal a link calling `open(path, line)`.
    #[wasm_bindgen(js_namespace = CodepodXterm, js_name = tracebackLinks)]
    pub fn traceback_links(
        terminal: &Terminal,
        open: &Closure<dyn FnMut(String, u32)>,
    ) -> Disposable;

    /// Return `false` from the handler to keep xterm from handling a key.
    #[wasm_bindgen(method, js_name = attachCustomKeyEventHandler)]
    pub fn attach_custom_key_event_handler(
        this: &Terminal,
        handler: &Closure<dyn FnMut(web_sys::KeyboardEvent) -> bool>,
    );

    /// What xterm's `on…` methods return.
    pub type Disposable;

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Disposable);

    /// `CodepodXterm.FitAddon`: sizes the grid to its element.
    #[wasm_bindgen(js_namespace = CodepodXterm)]
    pub type FitAddon;

    #[wasm_bindgen(constructor, js_namespace = CodepodXterm)]
    pub fn new() -> FitAddon;

    #[wasm_bindgen(method)]
    pub fn fit(this: &FitAddon);

    /// `CodepodXterm.WebLinksAddon`: URLs in the output become clickable.
    #[wasm_bindgen(js_namespace = CodepodXterm)]
    pub type WebLinksAddon;

    #[wasm_bindgen(constructor, js_namespace = CodepodXterm)]
    pub fn new() -> WebLinksAddon;
}

impl Terminal {
    /// Recolours the terminal (`terminal.options.theme = theme`).
    pub fn set_theme(&self, theme: &Object) {
        let _ = Reflect::set(&self.options(), &JsValue::from_str("theme"), theme);
    }
}

/// Reads a numeric property (the `{ cols, rows }` of a resize event).
pub fn number(value: &JsValue, key: &str) -> Option<u16> {
    Reflect::get(value, &JsValue::from_str(key))
        .ok()?
        .as_f64()
        .map(|n| n.clamp(1.0, f64::from(u16::MAX)) as u16)
}
