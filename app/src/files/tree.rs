//! The file tree of the IDE's sidebar: every folder and file of the workspace (from the
//! database), kept current by the socket's file events; open, create, rename or move (a new
//! path), delete after a confirmation, download.

use leptos::prelude::*;
use model::{FileEntry, FileKind, WorkspaceId, WorkspacePath};

use crate::{
    editor::{EditorCommand, EditorHandle},
    files::{
        api::{delete_path, make_dir, move_path, tree, write_file},
        rename_field::{Done, RenameField},
    },
};

/// The browser's prompt: the trimmed answer, `None` when cancelled or empty.
pub(crate) fn ask(question: &str, default: &str) -> Option<String> {
    window()
        .prompt_with_message_and_default(question, default)
        .ok()
        .flatten()
        .map(|answer| answer.trim().to_owned())
        .filter(|answer| !answer.is_empty())
}

fn tell(message: &str) {
    let _ = window().alert_with_message(message);
}

/// The sidebar tree. Bump `generation` to reload it.
#[component]
pub fn FileTree(
    workspace: WorkspaceId,
    generation: RwSignal<u64>,
    editor: EditorHandle,
) -> impl IntoView {
    let entries = Resource::new(move || generation.get(), move |_| tree(workspace));
    let reload = move || generation.update(|n| *n += 1);

    let create = Action::new(move |(path, folder): &(String, bool)| {
        let (path, folder) = (path.clone(), *folder);
        async move {
            let parsed = WorkspacePath::parse(&path).map_err(|error| error.to_string())?;
            let result = if folder {
                make_dir(workspace, parsed).await.map(|_| ())
            } else {
                write_file(workspace, parsed, model::Content::Utf8(String::new()), None)
                    .await
                    .map(|_| ())
            };
            result.map_err(|error| error.message)?;
            Ok::<_, String>((path, folder))
        }
    });
    let rename = Action::new(move |(from, to): &(String, String)| {
        let (from, to) = (from.clone(), to.clone());
        async move {
            let parsed_from = WorkspacePath::parse(&from).map_err(|error| error.to_string())?;
            let parsed_to = WorkspacePath::parse(&to).map_err(|error| error.to_string())?;
            move_path(workspace, parsed_from, parsed_to)
                .await
                .map(|_| ())
                .map_err(|error| error.message)
        }
    });
    let delete = Action::new(move |path: &String| {
        let path = path.clone();
        async move {
            let parsed = WorkspacePath::parse(&path).map_err(|error| error.to_string())?;
            delete_path(workspace, parsed)
                .await
                .map(|_| ())
                .map_err(|error| error.message)
        }
    });
    Effect::new(move |_| {
        if let Some(result) = create.value().get() {
            match result {
                Ok((path, false)) => editor.send(EditorCommand::Open(path)),
                Ok(_) => {}
                Err(message) => tell(&message),
            }
            reload();
        }
    });
    Effect::new(move |_| {
        for result in [rename.value().get(), delete.value().get()]
            .into_iter()
            .flatten()
        {
            if let Err(message) = result {
                tell(&message);
            }
            reload();
        }
    });

    // Moving by drag and drop, and uploading dropped files, into `folder` ("" = the root).
    let dropped = move |event: leptos::ev::DragEvent, folder: String| {
        event.prevent_default();
        event.stop_propagation();
        #[cfg(feature = "hydrate")]
        {
            let Some(transfer) = event.data_transfer() else {
                return;
            };
            let moved = transfer.get_data(DRAG_TYPE).unwrap_or_default();
            if !moved.is_empty() {
                let name = name_of(&moved);
                let target = if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                };
                if target != moved && !target.starts_with(&format!("{moved}/")) {
                    rename.dispatch((moved, target));
                }
                return;
            }
            // Dropped folders come as entries (taken now, read after the event).
            let entries = dropped_entries(&transfer);
            let plain = files_of(transfer.files(), &folder);
            leptos::task::spawn_local(async move {
                let files = if entries.is_empty() {
                    plain
                } else {
                    let mut files = Vec::new();
                    for entry in entries {
                        collect_entry(entry, folder.clone(), &mut files).await;
                    }
                    files
                };
                upload_or_tell(workspace, files).await;
                reload();
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = folder;
    };
    let allow_drop = move |event: leptos::ev::DragEvent| event.prevent_default();
    // A folder picker (`webkitdirectory` is not an attribute the view macro knows).
    let folder_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder_input.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    let picked = move |event: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            let files = files_of(input.files(), "");
            input.set_value("");
            leptos::task::spawn_local(async move {
                upload_or_tell(workspace, files).await;
                reload();
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    };

    let row = move |entry: FileEntry| {
        let path = entry.path.to_string();
        let depth = path.matches('/').count();
        let name = entry.path.name().to_owned();
        let is_dir = entry.kind == FileKind::Dir;
        let (open_path, delete_path_) = (path.clone(), path.clone());
        let (drag_path, drop_folder) = (path.clone(), path.clone());
        let inline_path = path.clone();
        // Renaming in place: the name becomes an input holding the path (a new folder in
        // it moves the entry); Enter applies, Escape or leaving it cancels.
        let (editing, set_editing) = signal(false);
        let active = {
            let path = path.clone();
            move || editor.active.get().as_deref() == Some(path.as_str())
        };
        view! {
            <li
                class="tree-row"
                class:folder=is_dir
                class:active=active
                data-path=path.clone()
                style=format!("--depth: {depth}")
                draggable="true"
                on:dragstart=move |event: leptos::ev::DragEvent| {
                    #[cfg(feature = "hydrate")]
                    if let Some(transfer) = event.data_transfer() {
                        let _ = transfer.set_data(DRAG_TYPE, &drag_path);
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = (event, &drag_path);
                }
                on:dragover=move |event| {
                    if is_dir {
                        allow_drop(event);
                    }
                }
                on:drop=move |event| {
                    if is_dir {
                        dropped(event, drop_folder.clone());
                    }
                }
            >
                <Show
                    when=move || editing.get()
                    fallback={
                        let (open_path, title, name) = (open_path.clone(), path.clone(), name.clone());
                        move || {
                            let open_path = open_path.clone();
                            view! {
                                <button
                                    type="button"
                                    class="tree-item"
                                    title=title.clone()
                                    on:click=move |_| {
                                        if !is_dir {
                                            editor.send(EditorCommand::Open(open_path.clone()));
                                        }
                                    }
                                    on:dblclick=move |_| set_editing.set(true)
                                    on:keydown=move |event| {
                                        if event.key() == "F2" {
                                            set_editing.set(true);
                                        }
                                    }
                                >
                                    <span
                                        class=format!("tree-icon icon icon-{}", icon_for(&name, is_dir))
                                        aria-hidden="true"
                                    ></span>
                                    {name.clone()}
                                </button>
                            }
                        }
                    }
                >
                    {
                        let from = inline_path.clone();
                        view! {
                            <RenameField
                                input_class="tree-rename-input"
                                label="New path"
                                value=from.clone()
                                on_done=Callback::new(move |done: Done| {
                                    set_editing.set(false);
                                    if let Done::Renamed(to) = done {
                                        rename.dispatch((from.clone(), to));
                                    }
                                })
                            />
                        }
                    }
                </Show>
                <span class="tree-actions">
                    <button
                        type="button"
                        class="tree-rename icon icon-edit"
                        title="Rename or move"
                        aria-label="Rename or move"
                        on:click=move |_| set_editing.set(true)
                    ></button>
                    {(!is_dir)
                        .then(|| {
                            view! {
                                <a
                                    class="tree-download icon icon-desktop-download"
                                    title="Download"
                                    aria-label="Download"
                                    href=format!(
                                        "/api/files/download?workspace={workspace}&path={}",
                                        js_encode(&path),
                                    )
                                    download=name_of(&path)
                                    rel="external"
                                ></a>
                            }
                        })}
                    <button
                        type="button"
                        class="tree-delete icon icon-trash"
                        title="Delete"
                        aria-label="Delete"
                        on:click=move |_| {
                            let what = if is_dir { "the folder" } else { "" };
                            let question = format!("Delete {what} {delete_path_}?");
                            if window().confirm_with_message(&question).unwrap_or(false) {
                                delete.dispatch(delete_path_.clone());
                            }
                        }
                    ></button>
                </span>
            </li>
        }
    };

    view! {
        <div class="tree-toolbar">
            <h2 class="panel-title">"Explorer"</h2>
            <button
                type="button"
                id="new-file"
                class="icon-button"
                title="New file"
                aria-label="New file"
                on:click=move |_| {
                    if let Some(path) = ask("New file path:", "") {
                        create.dispatch((path, false));
                    }
                }
            >
                <span class="icon icon-new-file" aria-hidden="true"></span>
            </button>
            <button
                type="button"
                id="new-folder"
                class="icon-button"
                title="New folder"
                aria-label="New folder"
                on:click=move |_| {
                    if let Some(path) = ask("New folder path:", "") {
                        create.dispatch((path, true));
                    }
                }
            >
                <span class="icon icon-new-folder" aria-hidden="true"></span>
            </button>
            <label class="icon-button" for="upload-files" title="Upload files" aria-label="Upload files">
                <span class="icon icon-cloud-upload" aria-hidden="true"></span>
            </label>
            <input type="file" id="upload-files" multiple hidden on:change=picked />
            <label class="icon-button" for="upload-folder" title="Upload a folder" aria-label="Upload a folder">
                <span class="icon icon-folder" aria-hidden="true"></span>
            </label>
            <input type="file" id="upload-folder" node_ref=folder_input hidden on:change=picked />
            <a
                class="icon-button"
                id="download-zip"
                title="Download the workspace as a zip"
                aria-label="Download the workspace as a zip"
                href=format!("/api/workspaces/download?workspace={workspace}")
                download=""
                rel="external"
            >
                <span class="icon icon-file-zip" aria-hidden="true"></span>
            </a>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading files…"</p> }>
            {
                // Only a change between a list and an error re-renders the whole tree; a new
                // list is diffed row by row (a burst of 20,000 files, then one more, adds one).
                // Made here, inside the transition, which so waits for the resource it reads.
                let loaded = Memo::new(move |_| {
                    entries
                        .get()
                        .map(|result| result.map(|_| ()).map_err(|error| error.message))
                });
                move || loaded
                    .get()
                    .map(|result| match result {
                        Ok(()) => {
                            view! {
                                <ul
                                    class="tree"
                                    aria-label="Files"
                                    on:dragover=allow_drop
                                    on:drop=move |event| dropped(event, String::new())
                                >
                                    <For
                                        each=move || {
                                            entries.get().and_then(Result::ok).unwrap_or_default()
                                        }
                                        key=|entry| (entry.path.clone(), entry.kind)
                                        children=row
                                    />
                                </ul>
                            }
                                .into_any()
                        }
                        Err(message) => view! { <p class="form-error">{message}</p> }.into_any(),
                    })
            }
        </Transition>
    }
    .into_any()
}

/// The drag-and-drop type of a tree entry being moved.
#[cfg(feature = "hydrate")]
const DRAG_TYPE: &str = "application/x-codepod-path";

/// Uploads files (each with its path in the workspace) through `/api/files/upload`.
#[cfg(feature = "hydrate")]
async fn upload(workspace: WorkspaceId, files: Vec<(String, web_sys::File)>) -> Result<(), String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    if files.is_empty() {
        return Ok(());
    }
    let failed = |_| "the upload could not be sent".to_owned();
    let form = web_sys::FormData::new().map_err(failed)?;
    for (path, file) in &files {
        form.append_with_blob_and_filename("file", file, path)
            .map_err(failed)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&form);
    let url = format!("/api/files/upload?workspace={workspace}");
    let response: web_sys::Response = JsFuture::from(window().fetch_with_str_and_init(&url, &init))
        .await
        .map_err(failed)?
        .dyn_into()
        .map_err(failed)?;
    if response.ok() {
        return Ok(());
    }
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|text| text.as_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    Err(serde_json::from_str::<crate::ApiError>(&text)
        .map(|error| error.message)
        .unwrap_or_else(|_| format!("the upload failed ({})", response.status())))
}

/// The `FileSystemEntry` of each dropped item (`webkitGetAsEntry`), if the browser has them.
#[cfg(feature = "hydrate")]
fn dropped_entries(transfer: &web_sys::DataTransfer) -> Vec<wasm_bindgen::JsValue> {
    use js_sys::{Function, Reflect};
    use wasm_bindgen::JsCast;
    let Ok(items) = Reflect::get(transfer, &"items".into()) else {
        return Vec::new();
    };
    let length = Reflect::get(&items, &"length".into())
        .ok()
        .and_then(|length| length.as_f64())
        .unwrap_or(0.0) as u32;
    (0..length)
        .filter_map(|i| {
            let item = Reflect::get_u32(&items, i).ok()?;
            let get = Reflect::get(&item, &"webkitGetAsEntry".into()).ok()?;
            let entry = get.dyn_ref::<Function>()?.call0(&item).ok()?;
            (!entry.is_null() && !entry.is_undefined()).then_some(entry)
        })
        .collect()
}

/// Calls `object.method(resolve, reject)` (the File System API's callback style) and waits.
#[cfg(feature = "hydrate")]
async fn callback_call(
    object: &wasm_bindgen::JsValue,
    method: &str,
) -> Option<wasm_bindgen::JsValue> {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::JsCast;
    let function = Reflect::get(object, &method.into()).ok()?;
    let function = function.dyn_ref::<Function>()?.clone();
    let target = object.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let _ = function.call2(&target, &resolve, &reject);
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.ok()
}

/// The files under a dropped entry (recursively for a folder), with their paths.
#[cfg(feature = "hydrate")]
fn collect_entry<'a>(
    entry: wasm_bindgen::JsValue,
    folder: String,
    out: &'a mut Vec<(String, web_sys::File)>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
    Box::pin(async move {
        use js_sys::{Array, Reflect};
        use wasm_bindgen::JsCast;
        let name = Reflect::get(&entry, &"name".into())
            .ok()
            .and_then(|name| name.as_string())
            .unwrap_or_default();
        let path = if folder.is_empty() {
            name
        } else {
            format!("{folder}/{name}")
        };
        let is_dir = Reflect::get(&entry, &"isDirectory".into())
            .ok()
            .and_then(|flag| flag.as_bool())
            .unwrap_or(false);
        if !is_dir {
            if let Some(file) = callback_call(&entry, "file").await
                && let Ok(file) = file.dyn_into::<web_sys::File>()
            {
                out.push((path, file));
            }
            return;
        }
        let Some(reader) = Reflect::get(&entry, &"createReader".into())
            .ok()
            .and_then(|create| {
                create
                    .dyn_ref::<js_sys::Function>()
                    .and_then(|f| f.call0(&entry).ok())
            })
        else {
            return;
        };
        // readEntries answers in batches until an empty one.
        loop {
            let Some(batch) = callback_call(&reader, "readEntries").await else {
                return;
            };
            let batch = Array::from(&batch);
            if batch.length() == 0 {
                return;
            }
            for child in batch.iter() {
                collect_entry(child, path.clone(), out).await;
            }
        }
    })
}

/// Uploads, and tells the user if that failed.
#[cfg(feature = "hydrate")]
async fn upload_or_tell(workspace: WorkspaceId, files: Vec<(String, web_sys::File)>) {
    if let Err(message) = upload(workspace, files).await {
        tell(&message);
    }
}

/// The files of a file input or a drop, with their paths under `folder` (a folder
/// upload keeps its tree: `webkitRelativePath`).
#[cfg(feature = "hydrate")]
fn files_of(list: Option<web_sys::FileList>, folder: &str) -> Vec<(String, web_sys::File)> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length())
        .filter_map(|i| list.get(i))
        .map(|file| {
            let relative = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
                .ok()
                .and_then(|value| value.as_string())
                .filter(|path| !path.is_empty())
                .unwrap_or_else(|| file.name());
            let path = if folder.is_empty() {
                relative
            } else {
                format!("{folder}/{relative}")
            };
            (path, file)
        })
        .collect()
}

fn name_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// Percent-encodes a path for a query string.
fn js_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The codicon drawn for an entry: folders, Python, data, documents, media.
pub fn icon_for(name: &str, is_dir: bool) -> &'static str {
    if is_dir {
        return "folder";
    }
    let lower = name.to_lowercase();
    let extension = lower
        .rsplit_once('.')
        .map_or("", |(_, extension)| extension);
    match extension {
        "py" | "pyi" | "pyw" | "ipynb" => "python",
        "json" | "jsonl" | "toml" | "yaml" | "yml" | "cfg" | "ini" => "json",
        "md" | "markdown" | "rst" => "markdown",
        "csv" | "tsv" | "parquet" | "xlsx" | "xls" => "table",
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "svg" | "bmp" | "ico" => "file-media",
        "pdf" => "file-pdf",
        "zip" | "gz" | "tgz" | "tar" | "bz2" | "xz" | "whl" => "file-zip",
        "txt" | "log" => "file-text",
        "sh" | "bash" | "js" | "ts" | "rs" | "c" | "h" | "cpp" | "html" | "css" | "sql" => {
            "file-code"
        }
        "bin" | "so" | "pyc" | "npy" | "pkl" | "db" | "sqlite" => "file-binary",
        _ => "file",
    }
}

#[cfg(test)]
mod tests {
    use super::icon_for;

    #[test]
    fn entries_get_icons_by_kind_and_extension() {
        assert_eq!(icon_for("src", true), "folder");
        assert_eq!(icon_for("main.PY", false), "python");
        assert_eq!(icon_for("train.csv", false), "table");
        assert_eq!(icon_for("plot.png", false), "file-media");
        assert_eq!(icon_for("Makefile", false), "file");
        assert_eq!(icon_for(".env", false), "file");
    }
}
