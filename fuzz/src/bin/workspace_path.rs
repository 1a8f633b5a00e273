//! `WorkspacePath`, the validated path every file operation takes: whatever parses cannot
//! leave the workspace (no `..`, `.`, empty or absolute component, no backslash or control
//! character), is within the size bounds, and parses back to itself.

use model::{WorkspacePath, path::MAX_PATH_BYTES};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(path) = WorkspacePath::parse(text) else {
            return;
        };
        let parsed = path.as_str();
        assert!(parsed.len() <= MAX_PATH_BYTES, "{parsed:?}");
        assert!(
            !parsed.starts_with('/') && !parsed.contains('\\'),
            "{parsed:?}"
        );
        assert!(!parsed.chars().any(char::is_control), "{parsed:?}");
        for component in parsed.split('/') {
            assert!(!matches!(component, "" | "." | ".."), "{parsed:?}");
        }
        assert_eq!(WorkspacePath::parse(parsed).as_ref(), Ok(&path));
        if let Some(parent) = path.parent() {
            assert!(path.is_within(&parent) && parent != path, "{parsed:?}");
        }
    });
}
