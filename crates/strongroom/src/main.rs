//! `strongroom`: the command-line program. A thin layer over `strongroom-store`.

mod cli;
mod commands;
mod exit;
mod settings;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return exit::report(&exit::Failure::io(format!("cannot start the runtime: {e}")))
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(failure) => exit::report(&failure),
    }
}
