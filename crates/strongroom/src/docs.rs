//! `strongroom completions SHELL` and the hidden `strongroom man DIR`.

use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Failure;

impl CompletionsArgs {
    /// Prints the completion script for the shell on stdout.
    #[allow(clippy::unnecessary_wraps)] // every command's `run` has the same shape
    pub fn run(self) -> Result<ExitCode, Failure> {
        let mut command = Cli::command();
        clap_complete::generate(
            self.shell,
            &mut command,
            "strongroom",
            &mut std::io::stdout(),
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl ManArgs {
    /// Writes `strongroom.1` and `strongroom-SUBCOMMAND.1` for every visible subcommand.
    pub fn run(self) -> Result<ExitCode, Failure> {
        std::fs::create_dir_all(&self.out)
            .map_err(|e| Failure::io(format!("cannot create {}: {e}", self.out.display())))?;
        clap_mangen::generate_to(Cli::command(), &self.out)
            .map_err(|e| Failure::io(format!("cannot write man pages: {e}")))?;
        eprintln!("strongroom: man pages written to {}", self.out.display());
        Ok(ExitCode::SUCCESS)
    }
}
