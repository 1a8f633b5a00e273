//! When the page's code panics, the wasm stops for good (`panic = "abort"`): buttons, the
//! editor and the terminal stop answering with nothing on screen to say why. The panic hook
//! (`frontend::hydrate`) calls [`show`], which puts a banner on the page that says so and
//! offers a reload. Written with the DOM alone: the reactive runtime may be what failed.

/// The banner's markup: a plain link reloads the page (no script, which the CSP would refuse
/// inline anyway).
const BANNER: &str = r#"<div class="crashed" role="alert"><span>Codepod stopped working in this tab because of an error. Saved files are safe.</span><a class="button primary" href="">Reload</a></div>"#;

/// Shows the banner, once however many panics follow.
pub fn show() {
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    if let Ok(Some(_)) = document.query_selector(".crashed") {
        return;
    }
    if let Some(body) = document.body() {
        let _ = body.insert_adjacent_html("beforeend", BANNER);
    }
}
