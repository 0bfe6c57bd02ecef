//! `strongroom completions SHELL` and the hidden `strongroom man DIR`.

use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Failure;

impl CompletionsArgs {
    /// Prints the completion script for the shell on stdout.
    pub fn run(self) -> Result<ExitCode, Failure> {
        use std::io::Write as _;
        let mut command = Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command, "strongroom", &mut script);
        match std::io::stdout().write_all(&script) {
            // A closed stdout (`completions zsh | head`) is the end of the output.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::io(format!(
                "cannot write the completion script: {e}"
            ))),
            _ => Ok(ExitCode::SUCCESS),
        }
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
