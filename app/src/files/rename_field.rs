//! The file tree's inline rename box: focused when it appears, with the part a user usually
//! changes selected — a file's name without its extension.

use leptos::prelude::*;

/// The range of `value` (in UTF-16 units, as the DOM counts) a rename selects: the last path
/// segment without its extension (`src/app.py` → `app`; `.env` and `Makefile` whole).
pub fn selection(value: &str) -> (u32, u32) {
    let units = |text: &str| text.encode_utf16().count() as u32;
    let start = value.rfind('/').map_or(0, |slash| slash + 1);
    let name = &value[start..];
    let end = match name.rfind('.') {
        Some(dot) if dot > 0 => start + dot,
        _ => value.len(),
    };
    (units(&value[..start]), units(&value[..end]))
}

/// How a rename ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Enter with a new, non-empty value (trimmed).
    Renamed(String),
    /// Enter without a change, or Escape: the keyboard stays where the rename started.
    Cancelled,
    /// The field lost the focus (a click elsewhere): nothing changes, the focus goes on.
    Left,
}

/// An `<input>` holding `value`; tells `on_done` how it ended.
#[component]
pub fn RenameField(
    #[prop(into)] input_class: String,
    #[prop(into)] label: String,
    value: String,
    on_done: Callback<Done>,
) -> impl IntoView {
    let input = NodeRef::<leptos::html::Input>::new();
    let done = StoredValue::new(false);
    // Once only: Enter removes the field, whose blur then comes after it was disposed.
    let finish = move |answer: Done| {
        if done.try_get_value() == Some(false) {
            done.set_value(true);
            let _ = on_done.try_run(answer);
        }
    };
    let (start, end) = selection(&value);
    Effect::new(move |_| {
        if let Some(input) = input.get() {
            // After the element is in the page: focus and selection need it attached.
            request_animation_frame(move || {
                let _ = input.focus();
                let _ = input.set_selection_range(start, end);
            });
        }
    });
    let original = value.clone();
    view! {
        <input
            class=input_class
            aria-label=label
            value=value
            node_ref=input
            on:keydown=move |event| {
                match event.key().as_str() {
                    "Enter" => {
                        event.prevent_default();
                        let to = event_target_value(&event).trim().to_owned();
                        finish(if to.is_empty() || to == original {
                            Done::Cancelled
                        } else {
                            Done::Renamed(to)
                        });
                    }
                    "Escape" => {
                        event.prevent_default();
                        finish(Done::Cancelled);
                    }
                    _ => {}
                }
                // Keys typed here are the field's, not the tree's navigation.
                event.stop_propagation();
            }
            on:blur=move |_| finish(Done::Left)
            on:click=|event| event.stop_propagation()
        />
    }
}

#[cfg(test)]
mod tests {
    use super::selection;

    #[test]
    fn a_rename_selects_the_name_without_its_extension() {
        assert_eq!(selection("main.py"), (0, 4));
        assert_eq!(selection("src/app.test.py"), (4, 12));
        assert_eq!(selection("notes/.env"), (6, 10));
        assert_eq!(selection("Makefile"), (0, 8));
        assert_eq!(selection("dir.d/file"), (6, 10));
        // UTF-16 units, as the DOM counts them.
        assert_eq!(selection("ü/ä.py"), (2, 3));
        assert_eq!(selection("😀.py"), (0, 2));
    }
}
