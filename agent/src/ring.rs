//! A fixed-capacity byte ring: the newest `capacity` bytes of a terminal's output.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Ring {
    bytes: VecDeque<u8>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Self {
            bytes: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends, dropping the oldest bytes beyond capacity.
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.capacity {
            &data[data.len() - self.capacity..]
        } else {
            data
        };
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    /// The buffered bytes, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.bytes.iter().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_up_to_capacity() {
        let mut ring = Ring::new(8);
        ring.push(b"hello");
        assert_eq!(ring.contents(), b"hello");
        ring.push(b" world");
        assert_eq!(ring.contents(), b"lo world");
        assert_eq!(ring.len(), 8);
        ring.push(b"0123456789abcdef");
        assert_eq!(ring.contents(), b"89abcdef");
    }
}
