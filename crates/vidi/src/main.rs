//! `vidi`: one binary for every role.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use vidi::Config;

#[derive(Parser)]
#[command(name = "vidi", version, about = "A self-hosted video platform, wire-compatible with api.video")]
struct Cli {
    /// A TOML configuration file (default: ./vidi.toml when it exists). VIDI_* variables override it.
    #[arg(long, global = true, env = "VIDI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API (and, as they land, every other role) in this process.
    Serve,
    /// Run encoding workers only, sharing the database and the media store with API nodes.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    ApiKey {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key and print it alone on stdout.
    Create {
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIDI_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let cfg = Config::load(cli.config)?;
    match cli.command {
        Command::Serve => {
            let server = vidi::start(cfg).await?;
            if let Some(key) = &server.first_key {
                println!("Vidi is running at {}", server.url);
                println!("API key (shown once): {key}");
                println!("Try: curl -u {key}: {}/videos", server.url);
            } else {
                println!("Vidi is running at {}", server.url);
            }
            server.wait().await
        }
        Command::Worker => vidi::run_workers(cfg).await,
        Command::Migrate => {
            vidi::open_repo(&cfg).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::ApiKey { command: KeyCommand::Create { name } } => {
            let repo = vidi::open_repo(&cfg).await?;
            println!("{}", vidi::create_key(repo.as_ref(), &name).await?);
            Ok(())
        }
        Command::Openapi => {
            print!("{}", vidi_api::openapi::document());
            Ok(())
        }
    }
}
