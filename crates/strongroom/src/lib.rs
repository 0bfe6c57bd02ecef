//! The reusable parts of the `strongroom` command (the command itself is its binary).

pub mod mask;
