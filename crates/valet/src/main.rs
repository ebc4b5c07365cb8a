//! `valet`: the server and its administration commands.
//!
//! Exit codes: 0 success, 1 runtime error (database, validation by the engine, I/O),
//! 2 usage or configuration error.

/// `println!` that ends the process quietly when stdout is closed (`valet user list | head`)
/// instead of panicking on the broken pipe.
macro_rules! println {
    () => { $crate::output::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}

mod access_log;
mod cli;
mod cmd;
mod config;
mod log_writer;
mod output;
mod policy;
mod setup;

use std::process::ExitCode;

use clap::Parser;

/// A failed command: how it is reported and which exit code it gets.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or configuration: exit code 2.
    Usage(String),
    /// Anything that went wrong while doing the work: exit code 1.
    Runtime(anyhow::Error),
}

pub type CliResult<T> = Result<T, Failure>;

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Runtime(anyhow::Error::new(e))
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Self {
        Failure::Usage(e.to_string())
    }
}

impl From<valet_core::engine::admin::AdminError> for Failure {
    fn from(e: valet_core::engine::admin::AdminError) -> Self {
        Failure::Runtime(anyhow::Error::new(e))
    }
}

/// `Failure::Usage` from anything printable.
pub fn usage(msg: impl std::fmt::Display) -> Failure {
    Failure::Usage(msg.to_string())
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(cmd::run(cli));
    // Do not wait for tasks still running (connections past the shutdown grace period).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
