//! `medledger`: the node and its CLI. The work lives in the library (`medledger::cli`, one module
//! per command group) and the crates under `crates/`; exit statuses are `medledger::cli::Exit`.

use clap::Parser;
use medledger::cli::Exit;
use tracing_subscriber::EnvFilter;

/// Restores the default SIGPIPE action, so `medledger … | head` ends quietly like other Unix
/// tools instead of panicking on a closed stdout (Rust ignores SIGPIPE by default).
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; signal() with SIG_DFL has no
    // other preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    let cli = medledger::cli::Cli::parse();
    let filter = EnvFilter::try_from_env("MEDLEDGER_LOG")
        .unwrap_or_else(|_| EnvFilter::new(cli.log_level()));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        medledger::cli::LogFormat::Text => logs.init(),
        medledger::cli::LogFormat::Json => logs.json().init(),
    }
    // Not for the node: a server must see EPIPE on a closed connection, not die of SIGPIPE.
    if !matches!(cli.command, medledger::cli::Command::Start(_)) {
        default_sigpipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            std::process::exit(Exit::Failed.code());
        }
    };
    match runtime.block_on(medledger::cli::run(cli)) {
        Ok(exit) => std::process::exit(exit.code()),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(Exit::Failed.code());
        }
    }
}
