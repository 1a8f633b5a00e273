//! `WorkspacePath`: a validated path relative to a workspace's root.
//!
//! It cannot express traversal: no absolute paths, no `.` or `..`, no empty components,
//! no backslashes, NULs or control characters, and bounded lengths. Everything that names
//! a file inside a workspace (API, store, agent) takes this type, never a `String`.

use serde::{Deserialize, Serialize};

/// Longest file or folder name, in bytes (the common filesystem limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest whole path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Deepest nesting.
pub const MAX_DEPTH: usize = 32;

/// Why a path was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    Empty,
    Absolute,
    EmptyComponent,
    DotComponent,
    Backslash,
    ControlCharacter,
    NameTooLong,
    PathTooLong,
    TooDeep,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "the path is empty",
            Self::Absolute => "the path must be relative to the workspace (no leading '/')",
            Self::EmptyComponent => "the path has an empty component ('//' or a trailing '/')",
            Self::DotComponent => "the path may not contain '.' or '..' components",
            Self::Backslash => "the path may not contain '\\'",
            Self::ControlCharacter => "the path may not contain control characters",
            Self::NameTooLong => "a file or folder name is longer than 255 bytes",
            Self::PathTooLong => "the path is longer than 1024 bytes",
            Self::TooDeep => "the path is nested more than 32 folders deep",
        })
    }
}

impl std::error::Error for PathError {}

/// A validated, normalised path inside a workspace, such as `src/main.py`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkspacePath(String);

impl WorkspacePath {
    /// Validates `text` as a workspace path.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if text.len() > MAX_PATH_BYTES {
            return Err(PathError::PathTooLong);
        }
        if text.starts_with('/') {
            return Err(PathError::Absolute);
        }
        if text.contains('\\') {
            return Err(PathError::Backslash);
        }
        if text.chars().any(char::is_control) {
            return Err(PathError::ControlCharacter);
        }
        let mut depth = 0;
        for component in text.split('/') {
            depth += 1;
            if component.is_empty() {
                return Err(PathError::EmptyComponent);
            }
            if component == "." || component == ".." {
                return Err(PathError::DotComponent);
            }
            if component.len() > MAX_NAME_BYTES {
                return Err(PathError::NameTooLong);
            }
        }
        if depth > MAX_DEPTH {
            return Err(PathError::TooDeep);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component: the file or folder name.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The containing folder, or `None` at the workspace root.
    pub fn parent(&self) -> Option<WorkspacePath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| Self(parent.to_owned()))
    }

    /// Every ancestor folder, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> Vec<WorkspacePath> {
        let mut out = Vec::new();
        let mut end = 0;
        while let Some(offset) = self.0[end..].find('/') {
            end += offset;
            out.push(Self(self.0[..end].to_owned()));
            end += 1;
        }
        out
    }

    /// The number of components.
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    /// Whether `self` is `other` or lies inside it (component-wise: `ab` is not in `a`).
    pub fn is_within(&self, other: &WorkspacePath) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0.as_bytes()[other.0.len()] == b'/')
    }

    /// `self` with its `from` prefix replaced by `to`, when `self` is within `from`.
    pub fn rebase(&self, from: &WorkspacePath, to: &WorkspacePath) -> Option<WorkspacePath> {
        if !self.is_within(from) {
            return None;
        }
        let rest = &self.0[from.0.len()..];
        Self::parse(&format!("{}{rest}", to.0)).ok()
    }

    /// A child of this folder.
    pub fn join(&self, name: &str) -> Result<WorkspacePath, PathError> {
        Self::parse(&format!("{}/{name}", self.0))
    }
}

impl TryFrom<String> for WorkspacePath {
    type Error = PathError;
    fn try_from(value: String) -> Result<Self, PathError> {
        Self::parse(&value)
    }
}

impl From<WorkspacePath> for String {
    fn from(value: WorkspacePath) -> String {
        value.0
    }
}

impl std::fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ordinary_paths_parse() {
        for good in [
            "main.py",
            "src/app/main.py",
            ".codepodignore",
            "a b/c-d_e.txt",
            "ünïcode/файл.py",
            "...",
            "..a",
        ] {
            assert_eq!(WorkspacePath::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn traversal_and_junk_are_rejected() {
        let cases = [
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("..", PathError::DotComponent),
            ("a/../../etc", PathError::DotComponent),
            ("./a", PathError::DotComponent),
            ("a//b", PathError::EmptyComponent),
            ("a/", PathError::EmptyComponent),
            ("a\\..\\b", PathError::Backslash),
            ("a\0b", PathError::ControlCharacter),
            ("a\nb", PathError::ControlCharacter),
        ];
        for (text, error) in cases {
            assert_eq!(WorkspacePath::parse(text), Err(error), "{text:?}");
        }
        assert_eq!(
            WorkspacePath::parse(&"n".repeat(256)),
            Err(PathError::NameTooLong)
        );
        assert_eq!(
            WorkspacePath::parse(&"a/".repeat(600)),
            Err(PathError::PathTooLong)
        );
        assert_eq!(
            WorkspacePath::parse(&vec!["d"; 33].join("/")),
            Err(PathError::TooDeep)
        );
    }

    #[test]
    fn parents_names_and_ancestors() {
        let path = WorkspacePath::parse("a/b/c.py").unwrap();
        assert_eq!(path.name(), "c.py");
        assert_eq!(path.parent().unwrap().as_str(), "a/b");
        let ancestors: Vec<_> = path.ancestors().into_iter().map(String::from).collect();
        assert_eq!(ancestors, ["a", "a/b"]);
        assert!(WorkspacePath::parse("top").unwrap().parent().is_none());
    }

    #[test]
    fn within_is_component_wise() {
        let a = WorkspacePath::parse("a").unwrap();
        assert!(WorkspacePath::parse("a/b").unwrap().is_within(&a));
        assert!(a.is_within(&a));
        assert!(!WorkspacePath::parse("ab").unwrap().is_within(&a));
    }

    #[test]
    fn rebase_moves_a_subtree() {
        let from = WorkspacePath::parse("a").unwrap();
        let to = WorkspacePath::parse("z/y").unwrap();
        let moved = WorkspacePath::parse("a/b/c")
            .unwrap()
            .rebase(&from, &to)
            .unwrap();
        assert_eq!(moved.as_str(), "z/y/b/c");
    }

    proptest! {
        // Whatever the input, a parsed path never escapes: no component is `.` or `..`,
        // it is relative, and re-parsing gives the same path.
        #[test]
        fn parsed_paths_never_escape(text in "[a-z./\\\\\\x00-\\x1f ]{0,40}") {
            if let Ok(path) = WorkspacePath::parse(&text) {
                prop_assert!(!path.as_str().starts_with('/'));
                for component in path.as_str().split('/') {
                    prop_assert!(!component.is_empty() && component != "." && component != "..");
                }
                prop_assert_eq!(WorkspacePath::parse(path.as_str()), Ok(path.clone()));
            }
        }

        #[test]
        fn parse_never_panics_on_any_string(text in any::<String>()) {
            let _ = WorkspacePath::parse(&text);
        }

        #[test]
        fn joined_paths_stay_within_their_parent(parent in "[a-z]{1,8}(/[a-z]{1,8}){0,3}", name in "[a-z.]{1,10}") {
            let parent = WorkspacePath::parse(&parent).unwrap();
            if let Ok(child) = parent.join(&name) {
                prop_assert!(child.is_within(&parent));
                prop_assert_eq!(child.parent(), Some(parent));
            }
        }
    }
}
