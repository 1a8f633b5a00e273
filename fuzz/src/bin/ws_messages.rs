//! The browser's WebSocket messages, as the server reads them: JSON control messages and
//! binary terminal frames. Arbitrary bytes never panic; whatever parses means one thing
//! (it serialises back to something that parses the same).

use model::ws::{ClientMessage, decode_data, encode_data};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(message) = serde_json::from_slice::<ClientMessage>(data) {
            let text = serde_json::to_string(&message).expect("a message serialises");
            let again: ClientMessage = serde_json::from_str(&text).expect("and parses back");
            assert_eq!(again, message);
        }
        if let Some((terminal, bytes)) = decode_data(data) {
            assert_eq!(encode_data(terminal, bytes), data);
        }
    });
}
