//! `run --mask`'s masker against a reference: however the stream is cut, the streamed
//! output equals masking the whole input at once (leftmost-longest), and no value of 6
//! bytes or more survives. Values and input come from a three-letter alphabet, so values
//! overlap, nest and share prefixes far more often than real secrets do.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use aho_corasick::{AhoCorasick, MatchKind};
use proptest::prelude::*;
use strongroom::mask::{Masker, MASK, MIN_MASKED_LEN};

fn reference(values: &[Vec<u8>], input: &[u8]) -> Vec<u8> {
    let long: Vec<&Vec<u8>> = values
        .iter()
        .filter(|v| v.len() >= MIN_MASKED_LEN)
        .collect();
    if long.is_empty() {
        return input.to_vec();
    }
    let searcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&long)
        .unwrap();
    let replacements = vec![MASK; long.len()];
    searcher.replace_all_bytes(input, &replacements)
}

fn streamed(values: &[Vec<u8>], input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let Some(mut masker) = Masker::new(values.iter().map(Vec::as_slice)) else {
        return input.to_vec();
    };
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let end = (start + cut).min(input.len());
        masker.push(&input[start..end], &mut out);
        start = end;
    }
    masker.push(&input[start..], &mut out);
    masker.finish(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn streaming_equals_masking_the_whole_input(
        values in prop::collection::vec(prop::collection::vec(b'a'..=b'c', 1..14), 1..5),
        input in prop::collection::vec(b'a'..=b'c', 0..300),
        cuts in prop::collection::vec(0usize..40, 0..20),
    ) {
        let out = streamed(&values, &input, &cuts);
        prop_assert_eq!(&out, &reference(&values, &input));
        for value in values.iter().filter(|v| v.len() >= MIN_MASKED_LEN) {
            prop_assert!(
                !out.windows(value.len()).any(|w| w == value.as_slice()),
                "a value survived masking"
            );
        }
    }
}
