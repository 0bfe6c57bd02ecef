//! `strongroom run --mask`: the cost of masking a child's output, against copying the same
//! bytes unmasked (`raw_copy`, what `run` does without `--mask`: the child writes to our
//! stdout directly, so even that copy is more than the unmasked path pays).
//!
//! The input is 4 MiB of log lines, one in 64 holding one of 50 masked values, fed in
//! 64 KiB reads as the pump does.

#![allow(clippy::unwrap_used)] // benches: a panic is the failure report

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strongroom::mask::Masker;

fn log_lines(values: &[Vec<u8>], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 256);
    let mut line = 0usize;
    while out.len() < size {
        if line.is_multiple_of(64) {
            out.extend_from_slice(b"connecting with token ");
            out.extend_from_slice(&values[line / 64 % values.len()]);
            out.push(b'\n');
        } else {
            out.extend_from_slice(
                format!("2026-12-02T20:00:00Z INFO request {line} served in 3 ms status=200\n")
                    .as_bytes(),
            );
        }
        line += 1;
    }
    out
}

fn mask(c: &mut Criterion) {
    let values: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("sk-live-{i:04}-0123456789abcdef").into_bytes())
        .collect();
    let input = log_lines(&values, 4 << 20);
    let mut group = c.benchmark_group("run_mask_4MiB");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function(BenchmarkId::from_parameter("raw_copy"), |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(64 * 1024);
            let mut total = 0;
            for chunk in input.chunks(64 * 1024) {
                out.extend_from_slice(chunk);
                total += out.len();
                out.clear();
            }
            total
        });
    });
    group.bench_function(BenchmarkId::from_parameter("strongroom_mask"), |b| {
        b.iter(|| {
            let mut masker = Masker::new(values.iter().map(Vec::as_slice)).unwrap();
            let mut out = Vec::with_capacity(64 * 1024);
            let mut total = 0;
            for chunk in input.chunks(64 * 1024) {
                masker.push(chunk, &mut out);
                total += out.len();
                out.clear();
            }
            masker.finish(&mut out);
            total + out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
