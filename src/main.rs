//! The `corral` binary: parse the command line, run the command, map the outcome to an exit
//! code (the only place an [`ExitStatus`] becomes one; the list is in `corral::exit`).

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use corral::cli::{Cli, Command};
use corral::commands;
use corral::exit::ExitStatus;

/// Planning a large fleet is mostly allocation: mimalloc plans 10,000 machines faster than
/// the system allocator (see docs/src/speed.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ExitCode::from(run().code())
}

fn run() -> ExitStatus {
    // clap exits with 2 on a usage error, which `drift` and `--detailed-exitcode` reserve for
    // "changes"; a mistyped flag must be an error (1) for schedulers and bots.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let e = with_plain_usage(e);
            let _ = e.print();
            return ExitStatus::failed_if(e.exit_code() != 0);
        }
    };
    if cli.no_color {
        corral::render::refuse_color();
    }
    set_diagnostic_colors();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitStatus::Error;
        }
    };
    let ended = runtime.block_on(async {
        let command = async {
            match &cli.command {
                Command::Validate(args) => commands::validate(args),
                Command::Graph(args) => commands::graph(args),
                Command::Show(args) => commands::show(args),
                Command::Plan(args) => commands::plan(args).await,
                Command::Drift(args) => commands::drift(args).await,
                Command::Apply(args) => commands::apply(args).await,
                Command::Facts(args) => commands::facts(args).await,
                Command::Import(args) => commands::import(args).await,
                Command::ForceUnlock(args) => commands::force_unlock(args).await,
                Command::Connections(corral::cli::ConnectionsCommand::Close) => {
                    commands::close_connections()
                }
                Command::Completions(args) => commands::completions(args),
                Command::Man(args) => commands::man(args),
                Command::Lab(command) => corral::lab::run(command)
                    .map(|()| ExitStatus::Success)
                    .map_err(miette::Report::new),
            }
        };
        // A second signal (or one outside an apply's locks) aborts the run at once, even
        // while the command waits on a host that will never answer.
        tokio::select! {
            result = command => Ended::Done(result),
            status = corral::apply::interrupt::aborted() => Ended::Aborted(status),
        }
    });
    match ended {
        Ended::Done(Ok(code)) => code,
        Ended::Done(Err(report)) => {
            eprintln!("{report:?}");
            ExitStatus::Error
        }
        Ended::Aborted(status) => {
            // What the command left running may be blocked on a host (or the terminal):
            // not waited for.
            runtime.shutdown_background();
            status
        }
    }
}

/// How the command ended: by itself, or aborted by a signal.
enum Ended {
    Done(miette::Result<ExitStatus>),
    Aborted(ExitStatus),
}

/// clap's "required arguments were not provided" error shows a usage line with the options
/// the command got, counting those set through the environment: with `CORRAL_SSH_CONFIG`
/// set, `Usage: corral plan --ssh-config <FILE> <PATH>...` reads as if the option were
/// required. The subcommand's own usage line says what is.
fn with_plain_usage(mut error: clap::Error) -> clap::Error {
    if error.kind() != ErrorKind::MissingRequiredArgument {
        return error;
    }
    let mut command = Cli::command();
    command.build();
    let mut current = &command;
    for arg in std::env::args_os().skip(1) {
        if let Some(sub) = arg.to_str().and_then(|a| current.find_subcommand(a)) {
            current = sub;
        }
    }
    let usage = current.clone().render_usage();
    error.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    error
}

/// Errors (miette) coloured as the rest of the output: miette reads `NO_COLOR` and the
/// terminal itself, but not `--no-color`.
fn set_diagnostic_colors() {
    if corral::render::color_allowed() {
        return;
    }
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().color(false).build())
    }));
}
