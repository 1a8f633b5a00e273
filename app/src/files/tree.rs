//! The file tree of the IDE's sidebar: every folder and file of the workspace (from the
//! database), kept current by the socket's file events, drawn as VS Code draws it —
//! folders first, collapsible (remembered in this browser per workspace), with file-type
//! icons. Click, Ctrl/Cmd+click and Shift+click select; the keyboard moves, opens (Enter),
//! renames (F2), deletes (Delete) and finds by typing; a context menu (right click,
//! Shift+F10) creates, uploads, renames, deletes, downloads, copies a path or opens a
//! terminal in a folder; dragging moves the selection, dropping files uploads them.

use std::collections::{BTreeSet, HashMap, HashSet};

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

/// An open context menu: where, and for which entry (`""`: the workspace root).
#[derive(Debug, Clone, PartialEq)]
struct MenuAt {
    x: f64,
    y: f64,
    path: String,
    is_dir: bool,
}

/// Type-to-find: what was typed, and when the last key came (ms).
#[derive(Debug, Clone, Default)]
struct Finding {
    typed: String,
    at: f64,
}

/// Keys typed this close together search on from the same text.
const FIND_PAUSE_MS: f64 = 800.0;
/// What the tree assumes until the browser has measured (the server draws this many rows).
const DEFAULT_VIEW_HEIGHT: f64 = 1200.0;
const DEFAULT_ROW_HEIGHT: f64 = 24.0;
/// Rows drawn beyond each edge of the view, so that scrolling shows no gap.
const OVERSCAN: usize = 20;

/// The sidebar tree. Bump `generation` to reload it; a folder put in `reveal` gets a
/// terminal `cd`'d into it.
#[component]
pub fn FileTree(
    workspace: WorkspaceId,
    generation: RwSignal<u64>,
    editor: EditorHandle,
    reveal: RwSignal<Option<String>>,
) -> impl IntoView {
    // Loaded in the browser only: the tree's rows are drawn from it inside and outside the
    // transition below (which window of rows, the keyboard's moves), and a resource read
    // outside a transition does not hydrate: the server sends "Loading files…".
    let entries = LocalResource::new(move || {
        generation.track();
        tree(workspace)
    });
    let reload = move || generation.update(|n| *n += 1);
    // Every entry in display order (folders first, then files, by name, at every level; those
    // under collapsed folders too), for the event handlers.
    let ordered = StoredValue::new(Vec::<FileEntry>::new());
    let collapsed = RwSignal::new(HashSet::<String>::new());
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let focused = RwSignal::new(None::<String>);
    // Where a Shift+click or Shift+arrow selection is measured from.
    let anchor = RwSignal::new(None::<String>);
    let renaming = RwSignal::new(None::<String>);
    let menu = RwSignal::new(None::<MenuAt>);
    let finding = StoredValue::new(Finding::default());
    // The folder the next picked files go to ("" = the root).
    let upload_target = StoredValue::new(String::new());
    let list = NodeRef::<leptos::html::Ul>::new();
    // Only the rows on screen are drawn (a workspace can hold 25,000 entries): the scroller's
    // offset and height, and one row's height (CSS sets it: 24 px, 40 px on phones), decide
    // which. Before the browser measures, the server and the hydrating page draw the same
    // first rows.
    let scroller = NodeRef::<leptos::html::Div>::new();
    let scrolled = RwSignal::new(0.0f64);
    let view_height = RwSignal::new(DEFAULT_VIEW_HEIGHT);
    let row_height = RwSignal::new(DEFAULT_ROW_HEIGHT);
    // Whether the keyboard is in the tree: when the focused row scrolls out of the page, the
    // list itself keeps the focus (its keys act on `focused`, which is still there).
    let has_focus = StoredValue::new(false);

    // Collapsed folders are remembered per workspace (a workspace has one owner); read once
    // hydrated (the server rendered every folder open, and hydration keeps what it rendered).
    #[cfg(feature = "hydrate")]
    {
        let key = format!("codepod:tree:{workspace}");
        let storage = || window().local_storage().ok().flatten();
        Effect::new(move |first: Option<()>| {
            if first.is_none() {
                if let Some(saved) = storage()
                    .and_then(|storage| storage.get_item(&key).ok().flatten())
                    .and_then(|text| crate::json::from_str::<HashSet<String>>(&text).ok())
                {
                    collapsed.set(saved);
                }
                collapsed.track();
                return;
            }
            if let Some(storage) = storage()
                && let Ok(text) = collapsed.with(serde_json::to_string)
            {
                let _ = storage.set_item(&key, &text);
            }
        });
    }

    // The rows under open folders, in order; the drawn rows are a window of these.
    let shown = crate::reactive::memo(move || {
        let list = entries.with(|loaded| {
            loaded
                .as_ref()
                .and_then(|result| result.as_ref().ok())
                .map(|list| display_order(list.clone()))
                .unwrap_or_default()
        });
        let rows = Rows::new(&list, &collapsed.read());
        ordered.set_value(list);
        rows
    });
    // Read in event handlers: nothing to track.
    let visible = move || shown.with_untracked(|rows| rows.paths());
    // Brings a row into the scroller's view (and so into the page).
    let scroll_to = move |path: &str| {
        let Some(index) = shown.with_untracked(|rows| rows.position(path)) else {
            return;
        };
        let height = row_height.get_untracked();
        let Some(scroller) = scroller.get_untracked() else {
            return;
        };
        let top = index as f64 * height;
        let (now, seen) = (
            f64::from(scroller.scroll_top()),
            f64::from(scroller.client_height()),
        );
        let to = if top < now {
            top
        } else if top + height > now + seen {
            top + height - seen
        } else {
            return;
        };
        scroller.set_scroll_top(to as i32);
        scrolled.set(f64::from(scroller.scroll_top()));
    };
    let toggle = move |path: &str| {
        collapsed.update(|folders| {
            if !folders.remove(path) {
                folders.insert(path.to_owned());
            }
        });
    };
    // The drawn rows: those in the scroller's view and a few either side, and how many
    // there are in all (the list is as tall as all of them).
    let span = crate::reactive::memo(move || {
        let height = row_height.get().max(1.0);
        let total = shown.with(Rows::len);
        let top = scrolled.get().max(0.0);
        let first = ((top / height) as usize)
            .saturating_sub(OVERSCAN)
            .min(total);
        let last = (((top + view_height.get()) / height).ceil() as usize + OVERSCAN).min(total);
        (first, last.max(first), total)
    });
    // Measured in the browser: the window's height (the scroller is never taller) and a
    // row's (phones have taller rows), again when the window changes size.
    #[cfg(feature = "hydrate")]
    {
        let measure = move || {
            if let Some(height) = window().inner_height().ok().and_then(|h| h.as_f64())
                && height > 0.0
                && height != view_height.get_untracked()
            {
                view_height.set(height);
            }
            if let Some(list) = list.get_untracked()
                && let Ok(Some(first)) = list.query_selector(".tree-row")
            {
                use wasm_bindgen::JsCast;
                if let Ok(first) = first.dyn_into::<web_sys::HtmlElement>() {
                    let height = f64::from(first.offset_height());
                    if height > 0.0 && height != row_height.get_untracked() {
                        row_height.set(height);
                    }
                }
            }
        };
        // The other half of `on_list_blur`: a browser that removes a focused row without a
        // `focusout` leaves the focus on nothing; after each redraw the list takes it back.
        let keep_focus = move || {
            if has_focus.get_value()
                && focus_lost()
                && let Some(list) = list.get_untracked()
            {
                focus_quietly(&list);
            }
        };
        Effect::new(move |_| {
            span.track();
            request_animation_frame(move || {
                measure();
                keep_focus();
            });
        });
        let resizes = window_event_listener(leptos::ev::resize, move |_| measure());
        on_cleanup(move || resizes.remove());
    }
    // Moves the keyboard focus (and the DOM focus) to a row, scrolled into view first.
    let focus_row = move |path: String| {
        focused.set(Some(path.clone()));
        scroll_to(&path);
        #[cfg(feature = "hydrate")]
        request_animation_frame(move || {
            let Some(list) = list.get_untracked() else {
                return;
            };
            let selector = format!(
                ".tree-row[data-path=\"{}\"] > .tree-item",
                css_string(&path)
            );
            if let Ok(Some(element)) = list.query_selector(&selector) {
                use wasm_bindgen::JsCast;
                if let Ok(element) = element.dyn_into::<web_sys::HtmlElement>() {
                    let _ = element.focus();
                }
            }
        });
    };
    // A row to give the keyboard focus once it is in the tree (a renamed or new entry).
    let refocus = StoredValue::new(None::<String>);
    Effect::new(move |_| {
        entries.track();
        request_animation_frame(move || {
            if let Some(path) = refocus.get_value()
                && ordered.with_value(|list| list.iter().any(|entry| entry.path.as_str() == path))
            {
                refocus.set_value(None);
                focus_row(path);
            }
        });
    });
    // The rows' marks follow the selection, the keyboard focus, the open file and the
    // folders' state: only the rows that were or are marked, and the folders, are touched.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let (first, last, _) = span.get();
        let marks = Marks {
            selected: selected.get(),
            focused: focused.get(),
            active: editor.active.get(),
            collapsed: collapsed.get(),
            // A burst adds siblings to rows already drawn.
            places: shown.with(|rows| {
                rows.rows[first.min(rows.len())..last.min(rows.len())]
                    .iter()
                    .map(|row| (row.entry.path.to_string(), (row.position, row.siblings)))
                    .collect()
            }),
        };
        // After the rows of a reload are in the page.
        request_animation_frame(move || {
            if let Some(list) = list.get_untracked() {
                marks.apply(&list);
            }
        });
    });
    let select_only = move |path: &str| {
        selected.set(BTreeSet::from([path.to_owned()]));
        anchor.set(Some(path.to_owned()));
    };
    let select_range = move |to: &str| {
        let rows = visible();
        let from = anchor.get_untracked().unwrap_or_else(|| to.to_owned());
        selected.set(range(&rows, &from, to).into_iter().collect());
    };

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
    // Moves, one after another; the first failure is told.
    let rename = Action::new(move |moves: &Vec<(String, String)>| {
        let moves = moves.clone();
        async move {
            for (from, to) in moves {
                let parsed_from = WorkspacePath::parse(&from).map_err(|error| error.to_string())?;
                let parsed_to = WorkspacePath::parse(&to).map_err(|error| error.to_string())?;
                move_path(workspace, parsed_from, parsed_to)
                    .await
                    .map_err(|error| error.message)?;
            }
            Ok::<_, String>(())
        }
    });
    let delete = Action::new(move |paths: &Vec<String>| {
        let paths = paths.clone();
        async move {
            for path in paths {
                let parsed = WorkspacePath::parse(&path).map_err(|error| error.to_string())?;
                delete_path(workspace, parsed)
                    .await
                    .map_err(|error| error.message)?;
            }
            Ok::<_, String>(())
        }
    });
    Effect::new(move |_| {
        if let Some(result) = create.value().get() {
            match result {
                Ok((path, folder)) => {
                    // The new entry is shown: its folders open, it is selected.
                    collapsed.update(|folders| {
                        for ancestor in ancestors(&path) {
                            folders.remove(ancestor);
                        }
                    });
                    select_only(&path);
                    focused.set(Some(path.clone()));
                    if folder {
                        // Scrolled to and focused once the reload has it.
                        refocus.set_value(Some(path));
                    } else {
                        editor.send(EditorCommand::Open(path));
                    }
                }
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

    // The entries an action on `path` applies to: the selection if `path` is in it.
    let targets = move |path: &str| -> Vec<String> {
        let chosen = selected.get_untracked();
        if chosen.contains(path) {
            outermost(chosen.into_iter().collect())
        } else {
            vec![path.to_owned()]
        }
    };
    let confirm_delete = move |paths: Vec<String>| {
        if paths.is_empty() {
            return;
        }
        let question = match paths.as_slice() {
            [one] => format!("Delete {one}?"),
            many => format!("Delete these {} items?\n{}", many.len(), many.join("\n")),
        };
        if window().confirm_with_message(&question).unwrap_or(false) {
            selected.set(BTreeSet::new());
            delete.dispatch(paths);
        }
    };
    let new_entry = move |folder: String, is_folder: bool| {
        let (question, default) = if is_folder {
            ("New folder path:", folder_prefix(&folder))
        } else {
            ("New file path:", folder_prefix(&folder))
        };
        if let Some(path) = ask(question, &default)
            && path.trim_end_matches('/') != folder
        {
            create.dispatch((path.trim_end_matches('/').to_owned(), is_folder));
        }
    };
    // The folder the toolbar's New/Upload act in: the focused folder, or the focused file's.
    let current_folder = move || {
        let focus = focused.get_untracked()?;
        let is_dir = ordered.with_value(|list| {
            list.iter()
                .find(|entry| entry.path.as_str() == focus)
                .map(|entry| entry.kind == FileKind::Dir)
        })?;
        Some(folder_of(&focus, is_dir))
    };
    let pick_upload = move |folder: String, input: &str| {
        upload_target.set_value(folder);
        if let Ok(Some(element)) = document().query_selector(input) {
            #[cfg(feature = "hydrate")]
            {
                use wasm_bindgen::JsCast;
                if let Ok(element) = element.dyn_into::<web_sys::HtmlElement>() {
                    element.click();
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = element;
        }
    };

    // Moving by drag and drop (the selection, if the dragged row is in it), and uploading
    // dropped files, into `folder` ("" = the root).
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
                let moved: Vec<String> = moved.lines().map(str::to_owned).collect();
                let moves = move_targets(&moved, &folder);
                if !moves.is_empty() {
                    rename.dispatch(moves);
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
            let folder = upload_target.get_value();
            upload_target.set_value(String::new());
            let files = files_of(input.files(), &folder);
            input.set_value("");
            leptos::task::spawn_local(async move {
                upload_or_tell(workspace, files).await;
                reload();
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    };

    // The menu for a row (or the root), at the pointer or under the focused row.
    let open_menu = move |x: f64, y: f64, path: String, is_dir: bool| {
        let (width, height) = (window_size().0, window_size().1);
        menu.set(Some(MenuAt {
            x: x.min(width - 230.0).max(0.0),
            y: y.min(height - 330.0).max(0.0),
            path,
            is_dir,
        }));
    };
    let close_menu = move || menu.set(None);
    let closes = window_event_listener(leptos::ev::pointerdown, move |event| {
        if menu.get_untracked().is_some() && !crate::dom::event_within(&event, ".context-menu") {
            menu.set(None);
        }
    });
    on_cleanup(move || closes.remove());

    // The tree's keys: arrows, Home/End, Enter, F2, Delete, Shift+F10, type-to-find.
    let on_key = move |event: leptos::ev::KeyboardEvent| {
        let key = event.key();
        let rows = visible();
        if rows.is_empty() {
            return;
        }
        let current = focused.get_untracked();
        let index = current
            .as_deref()
            .and_then(|path| rows.iter().position(|(row, _)| row == path));
        let go = |to: usize, extend: bool| {
            let path = rows[to].0.clone();
            if extend {
                select_range(&path);
            } else {
                select_only(&path);
            }
            focus_row(path);
        };
        let command = event.ctrl_key() || event.meta_key();
        // Any other key ends a type-to-find search.
        if key.chars().count() != 1 || command {
            finding.set_value(Finding::default());
        }
        match key.as_str() {
            "ArrowDown" => go(
                index.map_or(0, |i| (i + 1).min(rows.len() - 1)),
                event.shift_key(),
            ),
            "ArrowUp" => go(index.map_or(0, |i| i.saturating_sub(1)), event.shift_key()),
            "Home" => go(0, event.shift_key()),
            "End" => go(rows.len() - 1, event.shift_key()),
            "ArrowRight" => {
                let Some(i) = index else { return go(0, false) };
                let (path, is_dir) = &rows[i];
                if *is_dir {
                    if collapsed.read_untracked().contains(path) {
                        toggle(path);
                    } else if i + 1 < rows.len() && parent_of(&rows[i + 1].0) == path {
                        go(i + 1, false);
                    }
                }
            }
            "ArrowLeft" => {
                let Some(i) = index else { return go(0, false) };
                let (path, is_dir) = &rows[i];
                if *is_dir && !collapsed.read_untracked().contains(path) {
                    toggle(path);
                } else if let Some(parent) = rows.iter().position(|(row, _)| row == parent_of(path))
                {
                    go(parent, false);
                }
            }
            "Enter" => {
                let Some(i) = index else { return };
                let (path, is_dir) = rows[i].clone();
                if is_dir {
                    toggle(&path);
                } else {
                    editor.send(EditorCommand::Open(path));
                }
            }
            "F2" => {
                if let Some(path) = current {
                    renaming.set(Some(path));
                }
            }
            "Delete" => {
                // The selection (what the rows show), else the focused row.
                let chosen: Vec<String> = selected.get_untracked().into_iter().collect();
                if chosen.is_empty() {
                    confirm_delete(current.into_iter().collect());
                } else {
                    confirm_delete(outermost(chosen));
                }
            }
            "Escape" => {
                if let Some(path) = current {
                    select_only(&path);
                }
                close_menu();
            }
            "a" if command => {
                selected.set(rows.iter().map(|(path, _)| path.clone()).collect());
            }
            "ContextMenu" | "F10" if key == "ContextMenu" || event.shift_key() => {
                let Some(i) = index else { return };
                let (path, is_dir) = rows[i].clone();
                let (x, y) = row_corner(list, &path);
                open_menu(x, y, path, is_dir);
            }
            _ => {
                // Type-to-find: printable keys without a modifier jump to the next row whose
                // name starts with what was typed.
                if key.chars().count() != 1 || key == " " || command || event.alt_key() {
                    return;
                }
                let now = js_now();
                let mut typed = finding.with_value(|finding| {
                    if now - finding.at < FIND_PAUSE_MS {
                        finding.typed.clone()
                    } else {
                        String::new()
                    }
                });
                typed.push_str(&key);
                finding.set_value(Finding {
                    typed: typed.clone(),
                    at: now,
                });
                if let Some(found) = find_by_name(&rows, index, &typed) {
                    go(found, false);
                }
            }
        }
        if matches!(
            key.as_str(),
            "ArrowDown"
                | "ArrowUp"
                | "ArrowLeft"
                | "ArrowRight"
                | "Home"
                | "End"
                | "Enter"
                | "F2"
                | "Delete"
                | "ContextMenu"
                | "F10"
        ) || (command && key == "a")
        {
            event.prevent_default();
        }
    };

    // A click on a row (selection, open, fold) — the list's one handler, below, calls this.
    let clicked = move |event: &leptos::ev::MouseEvent, path: String, is_dir: bool| {
        menu.set(None);
        if event.shift_key() {
            select_range(&path);
            focused.set(Some(path));
        } else if event.ctrl_key() || event.meta_key() {
            selected.update(|chosen| {
                if !chosen.remove(&path) {
                    chosen.insert(path.clone());
                }
            });
            anchor.set(Some(path.clone()));
            focused.set(Some(path));
        } else {
            select_only(&path);
            focused.set(Some(path.clone()));
            if is_dir {
                toggle(&path);
            } else {
                editor.send(EditorCommand::Open(path));
            }
        }
    };

    // A row is static HTML as things are when it is made (read, not tracked): the list's
    // handlers find the row an event came from, and one effect marks the selection, focus,
    // open file and folders on the rows that change — 20,000 rows cannot each carry their
    // own handlers and reactive attributes.
    let row = move |Row {
                        entry,
                        position,
                        siblings,
                    }: Row| {
        let path = entry.path.to_string();
        let depth = path.matches('/').count();
        let name = entry.path.name().to_owned();
        let is_dir = entry.kind == FileKind::Dir;
        let open_now = is_dir && !collapsed.read_untracked().contains(&path);
        let is_renaming = {
            let path = path.clone();
            move || renaming.read().as_deref() == Some(path.as_str())
        };
        let rename_path = path.clone();
        view! {
            <li
                class=row_class(
                    is_dir,
                    selected.read_untracked().contains(&path),
                    editor.active.read_untracked().as_deref() == Some(path.as_str()),
                )
                role="treeitem"
                aria-selected=selected.read_untracked().contains(&path).to_string()
                aria-expanded=is_dir.then(|| open_now.to_string())
                attr:aria-level=(depth + 1).to_string()
                attr:aria-posinset=position.to_string()
                attr:aria-setsize=siblings.to_string()
                data-path=path.clone()
                style=format!("--depth: {depth}")
                draggable="true"
            >
                <Show
                    when=is_renaming
                    fallback={
                        let (title, name) = (path.clone(), name.clone());
                        move || {
                            let open = is_dir && !collapsed.read_untracked().contains(&title);
                            let focused_now = focused.read_untracked().as_deref() == Some(title.as_str());
                            view! {
                                <button
                                    type="button"
                                    class="tree-item"
                                    title=title.clone()
                                    tabindex=if focused_now { "0" } else { "-1" }
                                >
                                    <span class=twisty_class(is_dir, open) aria-hidden="true"></span>
                                    <span class=icon_class(&name, is_dir, open) aria-hidden="true"></span>
                                    <span class="tree-name">{name.clone()}</span>
                                </button>
                            }
                        }
                    }
                >
                    <RenameField
                        input_class="tree-rename-input"
                        label="New path"
                        value=rename_path.clone()
                        on_done=Callback::new({
                            let from = rename_path.clone();
                            move |done: Done| {
                                renaming.set(None);
                                match done {
                                    Done::Renamed(to) => {
                                        rename.dispatch(vec![(from.clone(), to.clone())]);
                                        select_only(&to);
                                        focused.set(Some(to.clone()));
                                        refocus.set_value(Some(to));
                                    }
                                    Done::Cancelled => focus_row(from.clone()),
                                    Done::Left => {}
                                }
                            }
                        })
                    />
                </Show>
                <span class="tree-actions">
                    <button
                        type="button"
                        class="tree-rename icon icon-edit"
                        title="Rename or move (F2)"
                        aria-label="Rename or move"
                        tabindex="-1"
                    ></button>
                    {(!is_dir)
                        .then(|| {
                            view! {
                                <a
                                    class="tree-download icon icon-desktop-download"
                                    title="Download"
                                    aria-label="Download"
                                    tabindex="-1"
                                    href=download_url(workspace, &path)
                                    download=name_of(&path)
                                ></a>
                            }
                        })}
                    <button
                        type="button"
                        class="tree-delete icon icon-trash"
                        title="Delete (Delete)"
                        aria-label="Delete"
                        tabindex="-1"
                    ></button>
                </span>
            </li>
        }
    };

    // The list's handlers, for every row: which row an event came from, and whether it is a
    // folder.
    let on_list_click = move |event: leptos::ev::MouseEvent| {
        let Some((path, is_dir, part)) = event_row(&event) else {
            return;
        };
        match part {
            RowPart::Item => clicked(&event, path, is_dir),
            RowPart::Rename => renaming.set(Some(path)),
            RowPart::Delete => confirm_delete(targets(&path)),
            RowPart::Other => {}
        }
    };
    let on_list_focus = move |event: leptos::ev::FocusEvent| {
        has_focus.set_value(true);
        if let Some((path, _, RowPart::Item)) = event_row(&event)
            && focused.get_untracked().as_deref() != Some(path.as_str())
        {
            focused.set(Some(path));
        }
    };
    // Leaving for somewhere else on the page. A focused row scrolled out of the page also
    // loses the focus (to nothing): then the list takes it.
    let on_list_blur = move |event: leptos::ev::FocusEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(list_now) = list.get_untracked() else {
                return;
            };
            let target = event.related_target();
            if target.is_some() {
                let inside = target
                    .and_then(|target| target.dyn_into::<web_sys::Node>().ok())
                    .is_some_and(|target| list_now.contains(Some(&target)));
                has_focus.set_value(inside);
                return;
            }
            let left = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::Node>().ok());
            // Once the page has settled: was the row removed, or did the user click away?
            request_animation_frame(move || {
                let removed = left.is_some_and(|node| !node.is_connected());
                if removed && focus_lost() {
                    if let Some(list) = list.get_untracked() {
                        focus_quietly(&list);
                    }
                } else if !removed {
                    has_focus.set_value(false);
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    };
    let on_list_menu = move |event: leptos::ev::MouseEvent| {
        event.prevent_default();
        let (x, y) = (f64::from(event.client_x()), f64::from(event.client_y()));
        match event_row(&event) {
            Some((path, is_dir, _)) => {
                if !selected.read_untracked().contains(&path) {
                    select_only(&path);
                }
                focused.set(Some(path.clone()));
                open_menu(x, y, path, is_dir);
            }
            None => open_menu(x, y, String::new(), true),
        }
    };
    let on_drag_start = move |event: leptos::ev::DragEvent| {
        #[cfg(feature = "hydrate")]
        if let Some((path, _, _)) = event_row(&event)
            && let Some(transfer) = event.data_transfer()
        {
            let _ = transfer.set_data(DRAG_TYPE, &targets(&path).join("\n"));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    };
    // Dropped on a folder: into it; on a file: beside it; elsewhere: the root.
    let on_drop = move |event: leptos::ev::DragEvent| {
        let folder = event_row(&event)
            .map(|(path, is_dir, _)| folder_of(&path, is_dir))
            .unwrap_or_default();
        dropped(event, folder);
    };

    // The context menu's entries act on the menu's entry, then close it.
    let menu_view = move || {
        let at = menu.get()?;
        let folder = if at.path.is_empty() {
            String::new()
        } else {
            folder_of(&at.path, at.is_dir)
        };
        let is_root = at.path.is_empty();
        let item = move |label: &'static str,
                         icon: &'static str,
                         shortcut: &'static str,
                         id: &'static str,
                         act: Box<dyn Fn()>| {
            view! {
                <button
                    type="button"
                    role="menuitem"
                    class="menu-item"
                    data-action=id
                    on:click=move |_| {
                        menu.set(None);
                        act();
                    }
                >
                    <span class=format!("icon icon-{icon}") aria-hidden="true"></span>
                    <span class="menu-label">{label}</span>
                    <span class="menu-shortcut">{shortcut}</span>
                </button>
            }
        };
        let (f1, f2, f3, f4, f5) = (
            folder.clone(),
            folder.clone(),
            folder.clone(),
            folder.clone(),
            folder.clone(),
        );
        let (p1, p2, p3) = (at.path.clone(), at.path.clone(), at.path.clone());
        let file_path = (!at.is_dir && !is_root).then(|| at.path.clone());
        Some(view! {
            <div
                class="context-menu"
                role="menu"
                aria-label="File actions"
                style=format!("left: {:.0}px; top: {:.0}px", at.x, at.y)
                on:keydown=move |event: leptos::ev::KeyboardEvent| {
                    event.stop_propagation();
                    menu_keys(&event);
                    if event.key() == "Escape" {
                        menu.set(None);
                    }
                }
            >
                {item("New File…", "new-file", "", "new-file", Box::new(move || new_entry(f1.clone(), false)))}
                {item("New Folder…", "new-folder", "", "new-folder", Box::new(move || new_entry(f2.clone(), true)))}
                {item("Upload Files…", "cloud-upload", "", "upload-files", Box::new(move || pick_upload(f3.clone(), "#upload-files")))}
                {item("Upload Folder…", "cloud-upload", "", "upload-folder", Box::new(move || pick_upload(f4.clone(), "#upload-folder")))}
                <hr />
                {(!is_root).then(|| item("Rename…", "edit", "F2", "rename", Box::new(move || renaming.set(Some(p1.clone())))))}
                {(!is_root).then(|| item("Delete", "trash", "Del", "delete", Box::new(move || confirm_delete(targets(&p2)))))}
                {file_path.map(|path| item("Download", "desktop-download", "", "download", Box::new(move || download(workspace, &path))))}
                {is_root.then(|| item("Download as Zip", "file-zip", "", "download-zip", Box::new(move || {
                    let _ = window().location().set_href(&format!("/api/workspaces/download?workspace={workspace}"));
                })))}
                {(!is_root).then(|| item("Copy Path", "copy", "", "copy-path", Box::new(move || copy_text(&p3))))}
                {item("Open in Terminal", "terminal", "", "reveal", Box::new(move || reveal.set(Some(f5.clone()))))}
            </div>
        })
    };
    // The first entry takes the focus when the menu opens (keyboard users are in it).
    Effect::new(move |_| {
        if menu.get().is_some() {
            request_animation_frame(|| {
                if let Ok(Some(first)) = document().query_selector(".context-menu .menu-item") {
                    #[cfg(feature = "hydrate")]
                    {
                        use wasm_bindgen::JsCast;
                        if let Ok(first) = first.dyn_into::<web_sys::HtmlElement>() {
                            let _ = first.focus();
                        }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = first;
                }
            });
        }
    });

    view! {
        <div class="tree-toolbar">
            <h2 class="panel-title">"Explorer"</h2>
            <button
                type="button"
                id="new-file"
                class="icon-button"
                title="New file"
                aria-label="New file"
                on:click=move |_| new_entry(current_folder().unwrap_or_default(), false)
            >
                <span class="icon icon-new-file" aria-hidden="true"></span>
            </button>
            <button
                type="button"
                id="new-folder"
                class="icon-button"
                title="New folder"
                aria-label="New folder"
                on:click=move |_| new_entry(current_folder().unwrap_or_default(), true)
            >
                <span class="icon icon-new-folder" aria-hidden="true"></span>
            </button>
            <button
                type="button"
                class="icon-button"
                title="Upload files (into the selected folder)"
                aria-label="Upload files"
                on:click=move |_| pick_upload(current_folder().unwrap_or_default(), "#upload-files")
            >
                <span class="icon icon-cloud-upload" aria-hidden="true"></span>
            </button>
            <input type="file" id="upload-files" multiple hidden on:change=picked />
            <button
                type="button"
                class="icon-button upload-folder"
                title="Upload a folder (into the selected folder)"
                aria-label="Upload a folder"
                on:click=move |_| pick_upload(current_folder().unwrap_or_default(), "#upload-folder")
            >
                <span class="icon icon-folder" aria-hidden="true"></span>
            </button>
            <input type="file" id="upload-folder" node_ref=folder_input hidden on:change=picked />
            <a
                class="button-link icon-button"
                id="download-zip"
                title="Download the workspace as a zip"
                aria-label="Download the workspace as a zip"
                href=format!("/api/workspaces/download?workspace={workspace}")
                download=""
            >
                <span class="icon icon-file-zip" aria-hidden="true"></span>
            </a>
            <button
                type="button"
                class="icon-button"
                id="collapse-all"
                title="Collapse all folders"
                aria-label="Collapse all folders"
                on:click=move |_| {
                    collapsed.set(ordered.with_value(|list| {
                        list.iter()
                            .filter(|entry| entry.kind == FileKind::Dir)
                            .map(|entry| entry.path.to_string())
                            .collect()
                    }));
                }
            >
                <span class="icon icon-collapse-all" aria-hidden="true"></span>
            </button>
        </div>
        <div
            class="tree-scroll"
            node_ref=scroller
            on:scroll=move |_| {
                if let Some(scroller) = scroller.get_untracked() {
                    scrolled.set(f64::from(scroller.scroll_top()));
                }
            }
        >
        <Transition fallback=|| view! { <p class="muted">"Loading files…"</p> }>
            {
                // Only a change between a list and an error re-renders the whole tree; a new
                // list is diffed row by row (a burst of 20,000 files, then one more, adds one).
                // Made here, inside the transition, which so waits for the resource it reads.
                let loaded = crate::reactive::memo(move || {
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
                                    role="tree"
                                    aria-label="Files"
                                    aria-multiselectable="true"
                                    tabindex="0"
                                    node_ref=list
                                    style=move || {
                                        let (first, _, total) = span.get();
                                        let height = row_height.get();
                                        format!(
                                            "padding-top: {}px; height: {}px",
                                            first as f64 * height,
                                            total as f64 * height,
                                        )
                                    }
                                    on:keydown=on_key
                                    on:click=on_list_click
                                    on:focusin=on_list_focus
                                    on:focusout=on_list_blur
                                    on:contextmenu=on_list_menu
                                    on:dragstart=on_drag_start
                                    on:dragover=allow_drop
                                    on:drop=on_drop
                                >
                                    <For
                                        each=move || {
                                            let (first, last, _) = span.get();
                                            shown.with(|rows| {
                                                rows.rows[first.min(rows.rows.len())..last.min(rows.rows.len())]
                                                    .to_vec()
                                            })
                                        }
                                        key=|row| (row.entry.path.clone(), row.entry.kind)
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
        </div>
        {menu_view}
    }
    .into_any()
}

/// Nothing on the page has the focus (the element that had it was removed).
#[cfg(feature = "hydrate")]
fn focus_lost() -> bool {
    document()
        .active_element()
        .is_none_or(|element| document().body().is_some_and(|body| *body == element))
}

/// Focuses an element without scrolling to it.
#[cfg(feature = "hydrate")]
fn focus_quietly(element: &web_sys::HtmlElement) {
    let options = web_sys::FocusOptions::new();
    options.set_prevent_scroll(true);
    let _ = element.focus_with_options(&options);
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
    Err(crate::json::from_str::<crate::ApiError>(&text)
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

/// Which part of a row an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum RowPart {
    Item,
    Rename,
    Delete,
    Other,
}

/// The row an event in the list came from: its path, whether it is a folder, which part.
#[cfg(feature = "hydrate")]
fn event_row(event: &web_sys::Event) -> Option<(String, bool, RowPart)> {
    use wasm_bindgen::JsCast;
    let target = event.target()?.dyn_into::<web_sys::Element>().ok()?;
    let row = target.closest(".tree-row").ok()??;
    let path = row.get_attribute("data-path")?;
    let is_dir = row.class_list().contains("folder");
    let inside = |selector: &str| target.closest(selector).ok().flatten().is_some();
    let part = if inside(".tree-rename-input") {
        RowPart::Other
    } else if inside(".tree-item") {
        RowPart::Item
    } else if inside(".tree-rename") {
        RowPart::Rename
    } else if inside(".tree-delete") {
        RowPart::Delete
    } else {
        RowPart::Other
    };
    Some((path, is_dir, part))
}

/// On the server no event ever comes.
#[cfg(not(feature = "hydrate"))]
fn event_row<E>(_event: &E) -> Option<(String, bool, RowPart)> {
    None
}

/// A row's classes as it is made.
fn row_class(is_dir: bool, selected: bool, active: bool) -> String {
    let mut class = String::from("tree-row");
    for (on, name) in [
        (is_dir, " folder"),
        (selected, " selected"),
        (active, " active"),
    ] {
        if on {
            class.push_str(name);
        }
    }
    class
}

/// The chevron of a folder (open or closed); nothing for a file.
fn twisty_class(is_dir: bool, open: bool) -> &'static str {
    match (is_dir, open) {
        (true, true) => "tree-twisty icon icon-chevron-down",
        (true, false) => "tree-twisty icon icon-chevron-right",
        _ => "tree-twisty",
    }
}

/// The entry's icon's classes.
fn icon_class(name: &str, is_dir: bool, open: bool) -> String {
    format!("tree-icon icon icon-{}", icon_for(name, is_dir, open))
}

/// What the rows show besides their names, applied to the page's rows.
#[cfg(feature = "hydrate")]
struct Marks {
    selected: BTreeSet<String>,
    focused: Option<String>,
    active: Option<String>,
    collapsed: HashSet<String>,
    /// Each drawn row's place among its siblings.
    places: HashMap<String, (u32, u32)>,
}

#[cfg(feature = "hydrate")]
impl Marks {
    fn apply(&self, list: &web_sys::HtmlUListElement) {
        use wasm_bindgen::JsCast;
        let rows = |selector: &str| -> Vec<web_sys::Element> {
            list.query_selector_all(selector)
                .map(|nodes| {
                    (0..nodes.length())
                        .filter_map(|i| nodes.get(i))
                        .filter_map(|node| node.dyn_into::<web_sys::Element>().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let row = |path: &str| {
            list.query_selector(&format!(".tree-row[data-path=\"{}\"]", css_string(path)))
                .ok()
                .flatten()
        };
        let path_of =
            |element: &web_sys::Element| element.get_attribute("data-path").unwrap_or_default();
        // The selection.
        for element in rows(".tree-row.selected") {
            if !self.selected.contains(&path_of(&element)) {
                let _ = element.class_list().remove_1("selected");
                let _ = element.set_attribute("aria-selected", "false");
            }
        }
        for path in &self.selected {
            if let Some(element) = row(path) {
                let _ = element.class_list().add_1("selected");
                let _ = element.set_attribute("aria-selected", "true");
            }
        }
        // The open file.
        for element in rows(".tree-row.active") {
            if self.active.as_deref() != Some(path_of(&element).as_str()) {
                let _ = element.class_list().remove_1("active");
            }
        }
        if let Some(element) = self.active.as_deref().and_then(row) {
            let _ = element.class_list().add_1("active");
        }
        // The keyboard focus: one row in the tab order.
        for element in rows(".tree-item[tabindex=\"0\"]") {
            let _ = element.set_attribute("tabindex", "-1");
        }
        if let Some(item) = self
            .focused
            .as_deref()
            .and_then(row)
            .and_then(|element| element.query_selector(".tree-item").ok().flatten())
        {
            let _ = item.set_attribute("tabindex", "0");
        }
        // Places among siblings.
        for element in rows(".tree-row") {
            if let Some((position, siblings)) = self.places.get(&path_of(&element)) {
                let _ = element.set_attribute("aria-posinset", &position.to_string());
                let _ = element.set_attribute("aria-setsize", &siblings.to_string());
            }
        }
        // Folders open or closed.
        for element in rows(".tree-row.folder") {
            let path = path_of(&element);
            let open = !self.collapsed.contains(&path);
            let _ = element.set_attribute("aria-expanded", if open { "true" } else { "false" });
            if let Ok(Some(twisty)) = element.query_selector(".tree-twisty") {
                twisty.set_class_name(twisty_class(true, open));
            }
            if let Ok(Some(icon)) = element.query_selector(".tree-icon") {
                icon.set_class_name(&icon_class(name_of(&path).as_str(), true, open));
            }
        }
    }
}

/// The entries in display order: at every level folders first, then files, each by name
/// (case-insensitively; equal names keep their given order), every folder followed by what
/// it holds. One key string per entry (cheap enough for 20,000 of them on every reload).
pub fn display_order(mut entries: Vec<FileEntry>) -> Vec<FileEntry> {
    fn key(entry: &FileEntry) -> String {
        let path = entry.path.as_str();
        let mut key = String::with_capacity(path.len() + 8);
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            // Below every character: a shorter name sorts first ("a" before "ab").
            let is_file = parts.peek().is_none() && entry.kind != FileKind::Dir;
            key.push(if is_file { '\u{1}' } else { '\u{0}' });
            push_name_key(&mut key, part);
            key.push('\u{0}');
        }
        key
    }
    entries.sort_by_cached_key(key);
    entries
}

/// A name's sort key: lower case, and numbers compared as numbers (`f2` before `f10`, as
/// VS Code's explorer does) by left-padding every run of digits to 20.
fn push_name_key(key: &mut String, name: &str) {
    let mut digits = String::new();
    let flush = |key: &mut String, digits: &mut String| {
        if !digits.is_empty() {
            key.extend(std::iter::repeat_n(
                '0',
                20usize.saturating_sub(digits.len()),
            ));
            key.push_str(digits);
            digits.clear();
        }
    };
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(key, &mut digits);
            key.extend(c.to_lowercase());
        }
    }
    flush(key, &mut digits);
}

/// The folders above `path`, nearest last (`a/b/c` → `a`, `a/b`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(at, _)| &path[..at])
}

/// The folder holding `path` (`""` for the root).
fn parent_of(path: &str) -> &str {
    path.rfind('/').map_or("", |at| &path[..at])
}

/// The folder an action on `path` happens in: itself for a folder, else its parent.
fn folder_of(path: &str, is_dir: bool) -> String {
    if is_dir {
        path.to_owned()
    } else {
        parent_of(path).to_owned()
    }
}

/// What a new entry's prompt starts with: the folder and a slash (nothing at the root).
fn folder_prefix(folder: &str) -> String {
    if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    }
}

/// One drawn row: the entry and its place among its siblings (screen readers say "3 of 40").
#[derive(Clone, PartialEq)]
struct Row {
    entry: FileEntry,
    position: u32,
    siblings: u32,
}

/// The rows under open folders, in display order.
#[derive(Clone, PartialEq, Default)]
struct Rows {
    rows: Vec<Row>,
}

impl Rows {
    fn new(entries: &[FileEntry], collapsed: &HashSet<String>) -> Self {
        let shown: Vec<&FileEntry> = entries
            .iter()
            .filter(|entry| {
                collapsed.is_empty()
                    || !ancestors(entry.path.as_str()).any(|folder| collapsed.contains(folder))
            })
            .collect();
        let mut siblings: HashMap<&str, u32> = HashMap::new();
        for entry in &shown {
            *siblings.entry(parent_of(entry.path.as_str())).or_default() += 1;
        }
        let mut seen: HashMap<&str, u32> = HashMap::new();
        let rows = shown
            .iter()
            .map(|entry| {
                let parent = parent_of(entry.path.as_str());
                let position = seen.entry(parent).or_default();
                *position += 1;
                Row {
                    entry: (*entry).clone(),
                    position: *position,
                    siblings: siblings[parent],
                }
            })
            .collect();
        Rows { rows }
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    /// The rows' paths, with whether each is a folder.
    fn paths(&self) -> Vec<(String, bool)> {
        self.rows
            .iter()
            .map(|row| (row.entry.path.to_string(), row.entry.kind == FileKind::Dir))
            .collect()
    }

    fn position(&self, path: &str) -> Option<usize> {
        self.rows
            .iter()
            .position(|row| row.entry.path.as_str() == path)
    }
}

/// The visible rows from `from` to `to`, inclusive, in either direction (just `to` when
/// `from` is not visible).
fn range(rows: &[(String, bool)], from: &str, to: &str) -> Vec<String> {
    let find = |path: &str| rows.iter().position(|(row, _)| row == path);
    let Some(end) = find(to) else {
        return Vec::new();
    };
    let start = find(from).unwrap_or(end);
    let (low, high) = (start.min(end), start.max(end));
    rows[low..=high]
        .iter()
        .map(|(path, _)| path.clone())
        .collect()
}

/// The next row (after `from`, wrapping; from `from` itself while more than one letter has
/// been typed) whose name starts with `typed`, case-insensitively.
fn find_by_name(rows: &[(String, bool)], from: Option<usize>, typed: &str) -> Option<usize> {
    let typed = typed.to_lowercase();
    let start = match from {
        Some(i) if typed.chars().count() > 1 => i,
        Some(i) => i + 1,
        None => 0,
    };
    (0..rows.len())
        .map(|offset| (start + offset) % rows.len())
        .find(|&i| name_of(&rows[i].0).to_lowercase().starts_with(&typed))
}

/// Only the outermost of the paths (a folder's contents go with it), sorted.
fn outermost(mut paths: Vec<String>) -> Vec<String> {
    paths.sort();
    let chosen: HashSet<String> = paths.iter().cloned().collect();
    paths
        .into_iter()
        .filter(|path| !ancestors(path).any(|folder| chosen.contains(folder)))
        .collect()
}

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
/// The moves that put `moved` into `folder` ("" = the root): each keeps its name; entries
/// already there, a folder into itself or its own subfolder, and entries whose folder is
/// moved too are left out.
fn move_targets(moved: &[String], folder: &str) -> Vec<(String, String)> {
    outermost(moved.to_vec())
        .into_iter()
        .filter(|path| parent_of(path) != folder)
        .filter(|path| folder != path && !folder.starts_with(&format!("{path}/")))
        .map(|path| {
            let target = if folder.is_empty() {
                name_of(&path)
            } else {
                format!("{folder}/{}", name_of(&path))
            };
            (path, target)
        })
        .collect()
}

/// The codicon drawn for an entry: folders open or closed, Python, data, documents, media.
pub fn icon_for(name: &str, is_dir: bool, open: bool) -> &'static str {
    if is_dir {
        return if open { "folder-opened" } else { "folder" };
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

/// A `/api/files/download` link for a file.
fn download_url(workspace: WorkspaceId, path: &str) -> String {
    format!(
        "/api/files/download?workspace={workspace}&path={}",
        js_encode(path)
    )
}

/// Starts a file's download (an `<a download>` clicked).
fn download(workspace: WorkspaceId, path: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Ok(link) = document().create_element("a")
            && let Ok(link) = link.dyn_into::<web_sys::HtmlElement>()
        {
            let _ = link.set_attribute("href", &download_url(workspace, path));
            let _ = link.set_attribute("download", &name_of(path));
            link.click();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (workspace, path);
}

/// Puts text on the clipboard.
fn copy_text(text: &str) {
    #[cfg(feature = "hydrate")]
    {
        let _ = window().navigator().clipboard().write_text(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// The window's inner size (the menu is kept inside it).
fn window_size() -> (f64, f64) {
    #[cfg(feature = "hydrate")]
    {
        let size = |value: Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>| {
            value
                .ok()
                .and_then(|value| value.as_f64())
                .unwrap_or(1024.0)
        };
        (size(window().inner_width()), size(window().inner_height()))
    }
    #[cfg(not(feature = "hydrate"))]
    (1024.0, 768.0)
}

/// Where a keyboard-opened menu goes: below the row's name.
#[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
fn row_corner(list: NodeRef<leptos::html::Ul>, path: &str) -> (f64, f64) {
    #[cfg(feature = "hydrate")]
    if let Some(list) = list.get_untracked()
        && let Ok(Some(row)) =
            list.query_selector(&format!(".tree-row[data-path=\"{}\"]", css_string(path)))
    {
        let rect = row.get_bounding_client_rect();
        return (rect.left() + 24.0, rect.bottom());
    }
    (0.0, 0.0)
}

/// Up/Down (and Home/End) move between a menu's entries.
fn menu_keys(event: &leptos::ev::KeyboardEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let key = event.key();
        if !matches!(key.as_str(), "ArrowDown" | "ArrowUp" | "Home" | "End") {
            return;
        }
        event.prevent_default();
        let Ok(items) = document().query_selector_all(".context-menu .menu-item") else {
            return;
        };
        let items: Vec<web_sys::HtmlElement> = (0..items.length())
            .filter_map(|i| items.get(i))
            .filter_map(|node| node.dyn_into().ok())
            .collect();
        if items.is_empty() {
            return;
        }
        let active = document().active_element();
        let at = items.iter().position(|item| {
            active
                .as_ref()
                .is_some_and(|active| active == item.as_ref() as &web_sys::Element)
        });
        let next = match key.as_str() {
            "ArrowDown" => at.map_or(0, |i| (i + 1) % items.len()),
            "ArrowUp" => at.map_or(items.len() - 1, |i| (i + items.len() - 1) % items.len()),
            "Home" => 0,
            _ => items.len() - 1,
        };
        let _ = items[next].focus();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = event;
}

/// Milliseconds now (for type-to-find's pauses).
fn js_now() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

/// A string for a CSS attribute selector in double quotes.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn css_string(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, dir: bool) -> FileEntry {
        FileEntry {
            path: WorkspacePath::parse(path).unwrap(),
            kind: if dir { FileKind::Dir } else { FileKind::File },
            size: 0,
            version: 1,
            hash: String::new(),
            updated_at: 0,
        }
    }

    fn paths(entries: &[FileEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.path.as_str()).collect()
    }

    #[test]
    fn folders_come_first_and_hold_their_contents() {
        let entries = vec![
            entry("b.py", false),
            entry("a", true),
            entry("a.txt", false),
            entry("a/z.py", false),
            entry("a/sub", true),
            entry("a/sub/x", false),
            entry("B", true),
            entry("README.md", false),
        ];
        assert_eq!(
            paths(&display_order(entries)),
            [
                "a",
                "a/sub",
                "a/sub/x",
                "a/z.py",
                "B",
                "a.txt",
                "b.py",
                "README.md"
            ]
        );
    }

    #[test]
    fn numbers_in_names_sort_as_numbers() {
        let entries = vec![
            entry("f10.txt", false),
            entry("f2.txt", false),
            entry("f1.txt", false),
            entry("F100.txt", false),
            entry("f.txt", false),
            entry("v1.10", true),
            entry("v1.9", true),
        ];
        assert_eq!(
            paths(&display_order(entries)),
            [
                "v1.9", "v1.10", "f.txt", "f1.txt", "f2.txt", "f10.txt", "F100.txt"
            ]
        );
    }

    #[test]
    fn collapsed_folders_hide_everything_below_them() {
        let entries = display_order(vec![
            entry("a", true),
            entry("a/sub", true),
            entry("a/sub/x", false),
            entry("a/y", false),
            entry("top.py", false),
        ]);
        let collapsed = HashSet::from(["a/sub".to_owned()]);
        let rows: Vec<String> = Rows::new(&entries, &collapsed)
            .paths()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(rows, ["a", "a/sub", "a/y", "top.py"]);
        let collapsed = HashSet::from(["a".to_owned()]);
        let rows: Vec<String> = Rows::new(&entries, &collapsed)
            .paths()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(rows, ["a", "top.py"]);
    }

    #[test]
    fn rows_know_their_place_among_their_siblings() {
        let entries = display_order(vec![
            entry("a", true),
            entry("a/x", false),
            entry("a/y", false),
            entry("a/z", false),
            entry("b", true),
            entry("b/w", false),
            entry("top.py", false),
        ]);
        let places = |collapsed: HashSet<String>| -> Vec<(String, u32, u32)> {
            Rows::new(&entries, &collapsed)
                .rows
                .into_iter()
                .map(|row| (row.entry.path.to_string(), row.position, row.siblings))
                .collect()
        };
        let open = places(HashSet::new());
        assert_eq!(open[0], ("a".to_owned(), 1, 3));
        assert_eq!(open[2], ("a/y".to_owned(), 2, 3));
        assert_eq!(open[5], ("b/w".to_owned(), 1, 1));
        assert_eq!(open[6], ("top.py".to_owned(), 3, 3));
        let folded = places(HashSet::from(["a".to_owned()]));
        assert_eq!(
            folded
                .iter()
                .map(|(path, ..)| path.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "b/w", "top.py"]
        );
        let rows = Rows::new(&entries, &HashSet::new());
        assert_eq!(rows.position("b/w"), Some(5));
        assert_eq!(rows.position("gone"), None);
    }

    #[test]
    fn shift_selection_spans_visible_rows_either_way() {
        let rows: Vec<(String, bool)> = ["a", "b", "c", "d"]
            .iter()
            .map(|p| ((*p).to_owned(), false))
            .collect();
        assert_eq!(range(&rows, "b", "d"), ["b", "c", "d"]);
        assert_eq!(range(&rows, "d", "b"), ["b", "c", "d"]);
        assert_eq!(range(&rows, "hidden", "c"), ["c"]);
        assert!(range(&rows, "a", "gone").is_empty());
    }

    #[test]
    fn typing_finds_the_next_name_and_narrows_with_more_letters() {
        let rows: Vec<(String, bool)> =
            ["data", "data/train.csv", "main.py", "models.py", "Makefile"]
                .iter()
                .map(|p| ((*p).to_owned(), false))
                .collect();
        assert_eq!(find_by_name(&rows, None, "m"), Some(2));
        assert_eq!(find_by_name(&rows, Some(2), "m"), Some(3));
        assert_eq!(find_by_name(&rows, Some(3), "m"), Some(4));
        assert_eq!(find_by_name(&rows, Some(4), "m"), Some(2), "wraps around");
        assert_eq!(find_by_name(&rows, Some(2), "mo"), Some(3));
        assert_eq!(
            find_by_name(&rows, Some(0), "t"),
            Some(1),
            "names, not paths"
        );
        assert_eq!(find_by_name(&rows, Some(0), "zz"), None);
    }

    #[test]
    fn moving_a_selection_keeps_names_and_refuses_moves_into_itself() {
        let moved = vec![
            "a".to_owned(),
            "a/x.py".to_owned(),
            "b.py".to_owned(),
            "dst/c.py".to_owned(),
        ];
        assert_eq!(
            move_targets(&moved, "dst"),
            [
                ("a".to_owned(), "dst/a".to_owned()),
                ("b.py".to_owned(), "dst/b.py".to_owned())
            ]
        );
        assert!(move_targets(&["a".to_owned()], "a/sub").is_empty());
        assert!(move_targets(&["a".to_owned()], "a").is_empty());
        assert_eq!(
            move_targets(&["dst/c.py".to_owned()], ""),
            [("dst/c.py".to_owned(), "c.py".to_owned())]
        );
        assert_eq!(
            outermost(vec!["ab".into(), "a".into(), "a/b".into()]),
            ["a", "ab"]
        );
    }

    #[test]
    fn entries_get_icons_by_kind_and_extension() {
        assert_eq!(icon_for("src", true, false), "folder");
        assert_eq!(icon_for("src", true, true), "folder-opened");
        assert_eq!(icon_for("main.PY", false, false), "python");
        assert_eq!(icon_for("train.csv", false, false), "table");
        assert_eq!(icon_for("plot.png", false, false), "file-media");
        assert_eq!(icon_for("Makefile", false, false), "file");
        assert_eq!(icon_for(".env", false, false), "file");
        assert_eq!(folder_of("a/b.py", false), "a");
        assert_eq!(folder_of("a/b", true), "a/b");
        assert_eq!(folder_prefix(""), "");
        assert_eq!(folder_prefix("a"), "a/");
        assert_eq!(css_string(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
