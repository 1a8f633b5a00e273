//! Hand-written bindings for the parts of the Monaco editor API Codepod uses. The vendor
//! bundle (`vendor/src/monaco.js`) puts the API on `globalThis.monaco`;
//! [`crate::vendor::load`] loads it before any of this is called.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `monaco.editor.IStandaloneCodeEditor`.
    #[derive(Clone)]
    pub type Editor;

    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = create)]
    pub fn create_editor(element: &web_sys::HtmlElement, options: &Object) -> Editor;

    #[wasm_bindgen(method, js_name = setModel)]
    pub fn set_model(this: &Editor, model: Option<&Model>);

    #[wasm_bindgen(method)]
    pub fn focus(this: &Editor);

    /// Whether the editor's text has the keyboard focus.
    #[wasm_bindgen(method, js_name = hasTextFocus)]
    pub fn has_text_focus(this: &Editor) -> bool;

    /// The cursors, selections and scroll position of the model shown now.
    #[wasm_bindgen(method, js_name = saveViewState)]
    pub fn save_view_state(this: &Editor) -> JsValue;

    #[wasm_bindgen(method, js_name = restoreViewState)]
    pub fn restore_view_state(this: &Editor, state: &JsValue);

    #[wasm_bindgen(method, js_name = onDidBlurEditorText)]
    pub fn on_did_blur_editor_text(this: &Editor, listener: &Closure<dyn FnMut()>) -> Disposable;

    #[wasm_bindgen(method)]
    pub fn layout(this: &Editor);

    /// Puts the cursor at `position` (`{ lineNumber, column }`).
    #[wasm_bindgen(method, js_name = setPosition)]
    pub fn set_position(this: &Editor, position: &Object);

    /// An editor action by id (`editor.action.formatDocument`), if the editor has it.
    #[wasm_bindgen(method, js_name = getAction)]
    pub fn get_action(this: &Editor, id: &str) -> Option<Action>;

    /// `monaco.editor.IEditorAction`.
    pub type Action;

    /// Runs the action; resolves when it is done.
    #[wasm_bindgen(method)]
    pub fn run(this: &Action) -> js_sys::Promise;

    #[wasm_bindgen(method, js_name = revealLineInCenter)]
    pub fn reveal_line_in_center(this: &Editor, line: u32);

    /// Decides where a jump to another file (go to definition, references) opens it:
    /// `opener.openCodeEditor(source, resource, selectionOrPosition)` returns whether it did.
    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = registerEditorOpener)]
    pub fn register_editor_opener(opener: &Object) -> Disposable;

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Editor);

    /// `monaco.editor.ITextModel`.
    #[derive(Clone)]
    pub type Model;

    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = createModel)]
    pub fn create_model(value: &str, language: &str, uri: &Uri) -> Model;

    /// The model with this URI, if one exists (the language client makes empty ones for
    /// files a jump goes to before the editor has loaded them).
    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = getModel)]
    pub fn get_model(uri: &Uri) -> Option<Model>;

    #[wasm_bindgen(method, js_name = getValue)]
    pub fn get_value(this: &Model) -> String;

    #[wasm_bindgen(method, js_name = setValue)]
    pub fn set_value(this: &Model, value: &str);

    /// Goes back down when an edit is undone: equal ids mean equal text.
    #[wasm_bindgen(method, js_name = getAlternativeVersionId)]
    pub fn alternative_version_id(this: &Model) -> f64;

    #[wasm_bindgen(method, js_name = onDidChangeContent)]
    pub fn on_did_change_content(this: &Model, listener: &Closure<dyn FnMut()>) -> Disposable;

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Model);

    /// `monaco.Uri`.
    #[wasm_bindgen(js_namespace = monaco)]
    pub type Uri;

    #[wasm_bindgen(static_method_of = Uri, js_namespace = monaco)]
    pub fn parse(value: &str) -> Uri;

    pub type Disposable;

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Disposable);

    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = setTheme)]
    pub fn set_theme(theme: &str);
}

/// Tells Monaco where its web worker is (before the first editor is created).
pub fn set_worker_url(url: &str) {
    let environment = Object::new();
    let url = url.to_owned();
    let get_worker_url = Closure::<dyn Fn() -> String>::new(move || url.clone());
    let function: &Function = get_worker_url.as_ref().unchecked_ref();
    let _ = Reflect::set(&environment, &"getWorkerUrl".into(), function);
    // Lives as long as the page.
    get_worker_url.forget();
    let _ = Reflect::set(&js_sys::global(), &"MonacoEnvironment".into(), &environment);
}

/// Monaco's language id for a file name.
pub fn language_for(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "py" | "pyi" | "pyw" => "python",
        "md" | "markdown" => "markdown",
        "json" => "json",
        "js" | "mjs" | "cjs" => "javascript",
        "ts" => "typescript",
        "html" | "htm" => "html",
        "css" => "css",
        "yml" | "yaml" => "yaml",
        "toml" | "ini" | "cfg" => "ini",
        "sh" | "bash" => "shell",
        "sql" => "sql",
        "xml" => "xml",
        "r" => "r",
        "c" | "h" => "c",
        "cpp" | "hpp" | "cc" => "cpp",
        "rs" => "rust",
        "go" => "go",
        "java" => "java",
        "dockerfile" => "dockerfile",
        _ if path.rsplit('/').next() == Some("Dockerfile") => "dockerfile",
        _ => "plaintext",
    }
}
