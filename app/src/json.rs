//! JSON in the browser is read one way: from bytes.
//!
//! serde_json reads `&str` and `&[u8]` through two different readers, so every type read
//! both ways has two copies of its deserializer in the hydrate bundle. Server functions'
//! responses (and their errors) are read from bytes by `server_fn`, so everything else the
//! page reads — resources' data from the server's HTML, local storage, the terminal's
//! control messages — goes through [`from_str`] here, which reads the text's bytes, and
//! resources are made with [`resource`], whose codec does the same
//! (−26 KB of code, docs/benchmarks.md).

use leptos::{prelude::*, server::codee};
use serde::{Serialize, de::DeserializeOwned};

/// Reads `text` as JSON through serde_json's byte reader.
pub fn from_str<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}

/// The resources' codec: JSON written as text on the server, read back by [`from_str`].
pub struct Json;

impl<T: Serialize> codee::Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, Self::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> codee::Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, Self::Error> {
        from_str(text)
    }
}

/// [`Resource::new`] with the [`Json`] codec.
#[track_caller]
pub fn resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use codee::{Decoder, Encoder};

    #[test]
    fn the_codec_reads_back_what_it_wrote() {
        let value: Result<Vec<(String, u64)>, String> = Ok(vec![("é ✓".into(), 3)]);
        let text = <Json as Encoder<_>>::encode(&value).unwrap();
        assert_eq!(text, r#"{"Ok":[["é ✓",3]]}"#);
        let back: Result<Vec<(String, u64)>, String> = Json::decode(&text).unwrap();
        assert_eq!(back, value);
        assert!(from_str::<u64>("\"x\"").is_err());
    }
}
