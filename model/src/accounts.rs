//! Account fields, validated at the boundary.

use serde::{Deserialize, Serialize};

use crate::{Invalid, UserId};

/// 3–32 characters of `a-z`, `0-9`, `_` and `-`. Stored and compared in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl TryFrom<String> for Username {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        let value = value.trim().to_ascii_lowercase();
        let len = value.chars().count();
        if !(3..=32).contains(&len) {
            return Err(Invalid("a username has 3 to 32 characters".into()));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(Invalid(
                "a username may contain only a-z, 0-9, '_' and '-'".into(),
            ));
        }
        Ok(Self(value))
    }
}

/// An email address: one `@`, a non-empty local part, a domain with a dot, no spaces, at
/// most 254 characters. Stored in lower case. (Deliverability is not checked.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        let value = value.trim().to_ascii_lowercase();
        let invalid = || Invalid("that is not a valid email address".into());
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(value))
    }
}

/// A password of 10–128 characters. Serialisable only because the browser sends it; no
/// response type contains one, and `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Password(String);

impl From<Password> for String {
    fn from(value: Password) -> String {
        value.0
    }
}

impl TryFrom<String> for Password {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        let len = value.chars().count();
        if !(10..=128).contains(&len) {
            return Err(Invalid("a password has 10 to 128 characters".into()));
        }
        Ok(Self(value))
    }
}

impl Password {
    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

macro_rules! string_newtype_common {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use string_newtype_common;
string_newtype_common!(Username);
string_newtype_common!(Email);

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub email: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(
            Username::try_from("Ada_Lovelace".to_owned())
                .unwrap()
                .as_str(),
            "ada_lovelace"
        );
        for bad in [
            "ab",
            "a b c",
            "ümlaut",
            "x".repeat(33).as_str(),
            "semi;colon",
            "",
        ] {
            assert!(Username::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(Email::try_from("Ada@Example.org".to_owned()).is_ok());
        for bad in [
            "ada",
            "@example.org",
            "ada@example",
            "ada@.org",
            "a da@example.org",
            "ada@example..org",
        ] {
            assert!(Email::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_10_to_128_characters_and_never_print() {
        assert!(Password::try_from("123456789".to_owned()).is_err());
        assert!(Password::try_from("x".repeat(129)).is_err());
        let password = Password::try_from("correct horse".to_owned()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }

    #[test]
    fn bad_values_are_rejected_by_serde() {
        assert!(serde_json::from_str::<Username>("\"no\"").is_err());
        assert!(serde_json::from_str::<Password>("\"short\"").is_err());
    }
}
