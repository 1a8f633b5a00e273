//! Loads the vendor bundles (xterm.js, Monaco) on demand in the browser, after hydration,
//! so that they never delay the first paint. The server writes the bundles' manifest
//! (logical name → content-hashed file) into `<meta name="codepod-vendor">`.

use std::collections::HashMap;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::{JsCast, prelude::*};
use wasm_bindgen_futures::JsFuture;

fn manifest() -> Result<HashMap<String, String>, String> {
    let document = leptos::prelude::document();
    let meta = document
        .query_selector("meta[name=codepod-vendor]")
        .ok()
        .flatten()
        .and_then(|element| element.dyn_into::<web_sys::HtmlMetaElement>().ok())
        .ok_or("the page has no vendor manifest")?;
    crate::json::from_str(&meta.content()).map_err(|error| format!("vendor manifest: {error}"))
}

/// Adds a `<script>` or stylesheet `<link>` for `/vendor/<file>` once, and waits until it
/// has loaded.
async fn include(file: &str) -> Result<(), String> {
    let document = leptos::prelude::document();
    let url = format!("/vendor/{file}");
    let id = format!("vendor-{file}");
    if let Some(existing) = document.get_element_by_id(&id) {
        if existing.get_attribute("data-loaded").is_some() {
            return Ok(());
        }
        return wait(&existing).await;
    }
    let element: web_sys::Element = if file.ends_with(".css") {
        let link = document
            .create_element("link")
            .map_err(|_| "cannot create a link element")?
            .unchecked_into::<web_sys::HtmlLinkElement>();
        link.set_rel("stylesheet");
        link.set_href(&url);
        link.into()
    } else {
        let script = document
            .create_element("script")
            .map_err(|_| "cannot create a script element")?
            .unchecked_into::<web_sys::HtmlScriptElement>();
        script.set_src(&url);
        script.into()
    };
    element.set_id(&id);
    let waiting = wait(&element);
    document
        .head()
        .ok_or("the page has no head")?
        .append_child(&element)
        .map_err(|_| "cannot add a vendor bundle to the page")?;
    waiting.await
}

/// Resolves when `element` fires `load`, fails on `error`.
fn wait(element: &web_sys::Element) -> impl std::future::Future<Output = Result<(), String>> {
    let element = element.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let target = element.clone();
        let loaded = Closure::once_into_js(move || {
            let _ = target.set_attribute("data-loaded", "");
            let _ = resolve.call0(&JsValue::NULL);
        });
        let failed = Closure::once_into_js(move || {
            let _ = reject.call0(&JsValue::NULL);
        });
        let _ = element.add_event_listener_with_callback("load", loaded.unchecked_ref());
        let _ = element.add_event_listener_with_callback("error", failed.unchecked_ref());
    });
    async move {
        JsFuture::from(promise)
            .await
            .map(|_| ())
            .map_err(|_| "a vendor bundle failed to load".to_owned())
    }
}

/// Loads the logical bundles `names` (e.g. `xterm.js`, `xterm.css`), in order.
pub async fn load(names: &[&str]) -> Result<(), String> {
    let manifest = manifest()?;
    for name in names {
        let file = manifest
            .get(*name)
            .ok_or_else(|| format!("the vendor bundle {name} was not built"))?;
        include(file).await?;
    }
    Ok(())
}

/// A plain JS object from key/value pairs (options for xterm.js and Monaco).
pub fn object(entries: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in entries {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}

/// The URL of a built vendor file (`editor-worker.js` → `/vendor/editor-worker-HASH.js`).
pub fn url(name: &str) -> Option<String> {
    manifest()
        .ok()?
        .get(name)
        .map(|file| format!("/vendor/{file}"))
}

const LIGHT: &str = "(prefers-color-scheme: light)";

/// Whether the OS asks for a dark theme (the stylesheet follows the same media query).
pub fn prefers_dark() -> bool {
    leptos::prelude::window()
        .match_media(LIGHT)
        .ok()
        .flatten()
        .is_none_or(|query| !query.matches())
}

/// Calls `on_change(dark)` when the OS switches between light and dark (at sunset, say),
/// until dropped. The stylesheet follows by itself; xterm.js and Monaco are told.
pub struct SchemeWatch {
    query: web_sys::MediaQueryList,
    callback: Closure<dyn FnMut()>,
}

impl SchemeWatch {
    pub fn new(on_change: impl Fn(bool) + 'static) -> Option<Self> {
        let query = leptos::prelude::window()
            .match_media(LIGHT)
            .ok()
            .flatten()?;
        let callback = Closure::<dyn FnMut()>::new(move || on_change(prefers_dark()));
        query
            .add_event_listener_with_callback("change", callback.as_ref().unchecked_ref())
            .ok()?;
        Some(Self { query, callback })
    }
}

impl Drop for SchemeWatch {
    fn drop(&mut self) {
        let _ = self
            .query
            .remove_event_listener_with_callback("change", self.callback.as_ref().unchecked_ref());
    }
}
