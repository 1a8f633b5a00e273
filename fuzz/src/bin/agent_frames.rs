//! Agent frames, as the server decodes them: the frame codec with the server's payload
//! limits per message type, then the checks of every list and string. Arbitrary bytes,
//! arriving in two chunks, never panic, never allocate past the limits, and every frame
//! that decodes encodes back to one that decodes the same.

use protocol::{DecodeError, Decoder, encode, from_agent};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut decoder = Decoder::with_limits(from_agent::limits);
        let (first, second) = data.split_at(data.len() / 2);
        decoder.push(first);
        drain(&mut decoder);
        decoder.push(second);
        drain(&mut decoder);
    });
}

fn drain(decoder: &mut Decoder) {
    // Every call consumes a frame or stops: bounded by the input.
    for _ in 0..4096 {
        match decoder.next_frame() {
            Ok(Some(frame)) => {
                let _ = from_agent::check(&frame.message);
                let mut bytes = Vec::new();
                encode(&frame, &mut bytes).expect("a decoded frame encodes");
                let mut again = Decoder::new();
                again.push(&bytes);
                let decoded = again.next_frame().expect("its encoding decodes");
                assert_eq!(
                    decoded.as_ref(),
                    Some(&frame),
                    "the round trip changed the frame"
                );
            }
            Ok(None) => return,
            // The stream cannot go on after these.
            Err(DecodeError::BadLength(_) | DecodeError::TooLarge { .. }) => return,
            Err(_) => continue,
        }
    }
}
