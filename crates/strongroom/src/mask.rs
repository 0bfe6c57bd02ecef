//! Masking injected values in a child's output (`strongroom run --mask`).
//!
//! A [`Masker`] is fed the bytes of one stream as they arrive, in pieces of any size, and
//! gives back what may be written now: every occurrence of a masked value replaced by
//! `***`, even when the value arrives split across reads. It holds back only a tail that
//! could still grow into a value (a proper prefix of one), so ordinary output is passed on
//! at once; [`Masker::finish`] releases that tail at the end of the stream.
//!
//! Values shorter than [`MIN_MASKED_LEN`] bytes are not masked: masking `1` or `true` would
//! garble ordinary output without hiding anything worth hiding.

use aho_corasick::{AhoCorasick, MatchKind};
use zeroize::Zeroizing;

/// What each occurrence of a value becomes.
pub const MASK: &[u8] = b"***";

/// Shortest value that is masked, in bytes.
pub const MIN_MASKED_LEN: usize = 6;

/// Masks values in one byte stream; see the module docs.
pub struct Masker {
    searcher: AhoCorasick,
    /// The values, by first byte (to find the tail that may still become one).
    by_first_byte: Vec<Vec<usize>>,
    values: Vec<Zeroizing<Vec<u8>>>,
    longest: usize,
    /// Bytes received but not yet released (at most `longest - 1`).
    pending: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Masker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Masker")
            .field("values", &self.values.len())
            .finish_non_exhaustive()
    }
}

impl Masker {
    /// A masker for `values` (those shorter than [`MIN_MASKED_LEN`] are left out), or
    /// `None` when none is long enough to mask.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        let mut values: Vec<Zeroizing<Vec<u8>>> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_MASKED_LEN)
            .map(|v| Zeroizing::new(v.to_vec()))
            .collect();
        values.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        values.dedup_by(|a, b| a.as_slice() == b.as_slice());
        if values.is_empty() {
            return None;
        }
        // Leftmost-longest: of values sharing a start, the longer one is masked whole.
        let searcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(values.iter().map(|v| v.as_slice()))
            .ok()?;
        let mut by_first_byte = vec![Vec::new(); 256];
        for (index, value) in values.iter().enumerate() {
            by_first_byte[usize::from(value[0])].push(index);
        }
        let longest = values.iter().map(|v| v.len()).max().unwrap_or(0);
        Some(Self {
            searcher,
            by_first_byte,
            values,
            longest,
            pending: Zeroizing::new(Vec::new()),
        })
    }

    /// How many values are masked.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false: a masker masks at least one value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Feeds the next `chunk` of the stream; appends what may be written now to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(chunk);
        let hold = self.hold_from();
        let mut released = 0;
        for found in self.searcher.find_iter(self.pending.as_slice()) {
            // A match starting at or after `hold` may still grow; later ones wait too.
            if found.start() >= hold {
                break;
            }
            out.extend_from_slice(&self.pending[released..found.start()]);
            out.extend_from_slice(MASK);
            released = found.end();
        }
        let keep_from = hold.max(released);
        out.extend_from_slice(&self.pending[released..keep_from]);
        self.pending.drain(..keep_from);
    }

    /// The end of the stream: appends the masked rest to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let mut released = 0;
        for found in self.searcher.find_iter(self.pending.as_slice()) {
            out.extend_from_slice(&self.pending[released..found.start()]);
            out.extend_from_slice(MASK);
            released = found.end();
        }
        out.extend_from_slice(&self.pending[released..]);
        self.pending.clear();
    }

    /// The first position of `pending` from which the rest is a proper prefix of a value
    /// (so more input could complete a match there); `pending.len()` when there is none.
    /// Only the last `longest - 1` positions can qualify.
    fn hold_from(&self) -> usize {
        let len = self.pending.len();
        let window = len.saturating_sub(self.longest.saturating_sub(1));
        (window..len)
            .find(|&start| {
                let tail = &self.pending[start..];
                self.by_first_byte[usize::from(tail[0])].iter().any(|&i| {
                    let value = &self.values[i];
                    value.len() > tail.len() && value.starts_with(tail)
                })
            })
            .unwrap_or(len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::Masker;

    /// Feeds `input` split at every position in `splits` and returns the whole output.
    fn masked(values: &[&str], input: &[u8], pieces: usize) -> Vec<u8> {
        let mut masker = Masker::new(values.iter().map(|v| v.as_bytes())).unwrap();
        let mut out = Vec::new();
        for chunk in input.chunks(pieces.max(1)) {
            masker.push(chunk, &mut out);
        }
        masker.finish(&mut out);
        out
    }

    #[test]
    fn values_are_masked_however_the_stream_is_cut() {
        let input = b"key=sk-live-123456 and again sk-live-123456; short abc; pre sk-live-12345";
        for pieces in 1..=input.len() {
            assert_eq!(
                masked(&["sk-live-123456", "abc"], input, pieces),
                b"key=*** and again ***; short abc; pre sk-live-12345".to_vec(),
                "cut into pieces of {pieces}"
            );
        }
    }

    #[test]
    fn the_longest_value_at_a_position_is_masked_whole() {
        for pieces in 1..=8 {
            assert_eq!(
                masked(
                    &["secret", "secret-long"],
                    b"a secret-long b secret c",
                    pieces
                ),
                b"a *** b *** c".to_vec()
            );
        }
    }

    #[test]
    fn ordinary_output_is_released_at_once() {
        let mut masker = Masker::new([b"password1".as_slice()]).unwrap();
        let mut out = Vec::new();
        masker.push(b"server started\n", &mut out);
        assert_eq!(out, b"server started\n");
        out.clear();
        // A tail that could still become the value waits, and only that tail.
        masker.push(b"login pass", &mut out);
        assert_eq!(out, b"login ");
        out.clear();
        masker.push(b"word1 ok", &mut out);
        assert_eq!(out, b"*** ok");
    }

    #[test]
    fn binary_values_and_output_are_masked_byte_for_byte() {
        let value: &[u8] = &[0, 159, 146, 150, 255, 10, 13];
        let mut masker = Masker::new([value]).unwrap();
        let mut out = Vec::new();
        let mut input = vec![255, 0];
        input.extend_from_slice(value);
        input.extend_from_slice(&[1, 2]);
        for byte in &input {
            masker.push(std::slice::from_ref(byte), &mut out);
        }
        masker.finish(&mut out);
        assert_eq!(out, [255, 0, b'*', b'*', b'*', 1, 2]);
    }

    #[test]
    fn short_values_are_not_masked() {
        assert!(Masker::new([b"12345".as_slice(), b"true".as_slice()]).is_none());
    }
}
