//! `strongroom`: the command-line program. A thin layer over `strongroom-store`.

mod auth_cli;
mod backup;
mod childenv;
mod cli;
mod commands;
mod db_cli;
mod docs;
mod doctor;
mod dotenv;
mod dynamic_run;
mod envfiles;
mod exit;
mod files;
mod harden;
mod init;
mod keys;
mod lockfile;
mod login;
mod operator;
mod output;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod pocketbase;
mod schema;
mod serve;
mod settings;
mod states;
mod token_cli;
mod transfer;

use std::process::ExitCode;

/// mimalloc: under the server's many small, short-lived allocations across threads it
/// gives about 1.4x the throughput of the system allocator (docs/performance.md). Secret
/// material never relies on the allocator: it lives in `zeroize` types, wiped on drop.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;

fn main() -> ExitCode {
    end_quietly_on_closed_stdout();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    harden::non_dumpable();
    let serving = matches!(cli.command, cli::Command::Serve(_));
    // Kept until `main` returns: dropping it writes out the lines still buffered.
    let _log_writer = serving.then(init_logging);
    // The server uses every core; one-shot commands need only one thread.
    let mut builder = if serving {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            return exit::report(&exit::Failure::io(format!("cannot start the runtime: {e}")))
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(failure) => exit::report(&failure),
    }
}

/// A closed stdout (`strongroom audit | head -1`, `list --json | jq -e .[0]`) is the end
/// of the output, not an error: Rust ignores SIGPIPE, so a write to the closed pipe fails
/// with `EPIPE` and `println!` reports it by panicking. This hook turns exactly that panic
/// into a quiet exit 0 (the reader took what it wanted); every other panic is reported as
/// before. (SIGPIPE is not restored to its default: `serve` writes to sockets and `run`
/// relays a child's output, where a closed reader must not kill the process.)
fn end_quietly_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// `--help` and `--version` print as clap renders them (exit 0); a usage error is the
/// documented one line, `strongroom: MESSAGE (see --help)`, exit 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // An unexpected argument may be a value typed on the command line by mistake
    // (`strongroom set KEY sk-live-...`): it is repeated only when it looks like a flag.
    if error.kind() == ErrorKind::UnknownArgument {
        let argument = match error.get(clap::error::ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(argument)) => argument.as_str(),
            _ => "",
        };
        let looks_like_a_flag = argument.starts_with("--")
            && argument[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-');
        if !looks_like_a_flag {
            return exit::report(&exit::Failure {
                message: "unexpected argument (not repeated here: it may be a secret value; \
                          values are read from stdin or --value-file) (see strongroom --help)"
                    .into(),
                code: 2,
            });
        }
    }
    // The error's first paragraph (its message, and the arguments it lists), on one line;
    // clap's tip and usage lines are left to --help.
    let rendered = error.render().to_string();
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = paragraph.join(" ");
    let message = joined.strip_prefix("error: ").unwrap_or(&joined);
    exit::report(&exit::Failure {
        message: format!("{message} (see strongroom --help)"),
        code: 2,
    })
}

/// Structured logs on stderr for `serve` (`RUST_LOG`, default `info`; `STRONGROOM_LOG_FORMAT=json`).
/// Request logs carry method, path, status and latency: never headers, bodies or queries.
/// Lines are formatted on the request's thread and written by a thread of their own
/// (`tracing-appender`), so a request never waits on stderr; the buffer holds 128 000
/// lines, and when it is full a request waits rather than a line being dropped.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("STRONGROOM_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}

/// Runs one command: each is an argument struct with its own `run`.
async fn run(command: cli::Command) -> Result<ExitCode, exit::Failure> {
    use cli::Command;
    match command {
        Command::Keygen(c) => c.run(),
        Command::Set(c) => c.run().await,
        Command::Get(c) => c.run().await,
        Command::List(c) => c.run().await,
        Command::Rm(c) => c.run().await,
        Command::Settings(c) => c.run().await,
        Command::Undelete(c) => c.run(transfer::VersionCommand::Undelete).await,
        Command::Destroy(c) => c.run(transfer::VersionCommand::Destroy).await,
        Command::Cp(c) => c.run(false).await,
        Command::Mv(c) => c.run(true).await,
        Command::History(c) => c.run().await,
        Command::Rollback(c) => c.run().await,
        Command::Verify(c) => c.run().await,
        Command::Audit(c) => c.run().await,
        Command::Rotate(c) => c.run().await,
        Command::Import(c) => c.run().await,
        Command::Export(c) => c.run().await,
        Command::Run(c) => c.run().await,
        Command::Lock(c) => c.run().await,
        Command::File(c) => c.run().await,
        Command::Serve(c) => c.run().await,
        Command::Token(c) => c.run().await,
        Command::Login(c) => c.run().await,
        Command::Auth(c) => c.run().await,
        Command::Db(c) => c.run().await,
        Command::Lease(c) => c.run().await,
        Command::Cleanup(c) => c.run().await,
        Command::Backup(c) => c.run().await,
        Command::Restore(c) => c.run().await,
        Command::Migrate(c) => c.run().await,
        Command::Keys(c) => c.run().await,
        Command::Init(c) => c.run().await,
        Command::Doctor(c) => c.run().await,
        Command::Completions(c) => c.run(),
        Command::Man(c) => c.run(),
    }
}
