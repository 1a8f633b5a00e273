//! JSON Schemas (draft 2020-12, the dialect of OpenAPI 3.1) of the validated strings, so the
//! API's published contract says what `TryFrom<String>` accepts. Each schema admits at
//! least every value the type accepts (a client that follows it is never refused for the
//! shape), and its pattern refuses what the type refuses where a regular expression can say
//! it; limits in bytes are documented in the description.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::{Email, Password, Username, WorkspaceName, WorkspacePath};

macro_rules! string_schema {
    ($name:ident, $schema:tt) => {
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_schema!(Username, {
    "type": "string",
    "description": "3–32 of a-z, 0-9, `_` and `-` (upper case is taken as lower case; \
                    surrounding spaces are ignored).",
    "pattern": "^\\s*[A-Za-z0-9_-]{3,32}\\s*$",
    "examples": ["ada"]
});

string_schema!(Email, {
    "type": "string",
    "description": "An email address: one `@`, a local part of 1–64 bytes, a domain with a \
                    dot, at most 254 bytes. Stored in lower case. Deliverability is not checked.",
    "pattern": "^\\s*[^@\\s]+@[^@\\s]+\\.[^@\\s]+\\s*$",
    "examples": ["ada@example.org"]
});

string_schema!(Password, {
    "type": "string",
    "description": "10–128 characters.",
    "minLength": 10,
    "maxLength": 128,
    "writeOnly": true,
    "examples": ["correct horse battery"]
});

string_schema!(WorkspaceName, {
    "type": "string",
    "description": "1–64 characters once trimmed, no control characters, `/` or `\\`. \
                    Unique among the owner's workspaces.",
    "pattern": "^\\s*[^\\s/\\\\\\u0000-\\u001f\\u007f-\\u009f]([^/\\\\\\u0000-\\u001f\\u007f-\\u009f]*[^\\s/\\\\\\u0000-\\u001f\\u007f-\\u009f])?\\s*$",
    "examples": ["analysis"]
});

string_schema!(WorkspacePath, {
    "type": "string",
    "description": "A path relative to the workspace's root, such as `src/main.py`: no \
                    leading `/`, no `.` or `..` components, no empty components, no `\\`, \
                    NULs or control characters; names up to 255 bytes, the path up to 1024 \
                    bytes and 32 levels.",
    "minLength": 1,
    "maxLength": 1024,
    "pattern": "^(?!\\.\\.?(/|$))(?!.*/\\.\\.?(/|$))[^/\\\\\\u0000-\\u001f\\u007f-\\u009f]+(/[^/\\\\\\u0000-\\u001f\\u007f-\\u009f]+)*$",
    "examples": ["src/main.py"]
});

/// The codes a client can get (every [`crate::ErrorCode`] but `unknown`, which only a
/// client's older build makes of a code it does not know).
impl JsonSchema for crate::ErrorCode {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let codes: Vec<&str> = crate::ErrorCode::ALL
            .iter()
            .map(|code| code.as_str())
            .collect();
        json_schema!({
            "type": "string",
            "description": "Why a request failed: stable, machine-readable.",
            "enum": codes
        })
    }
}
