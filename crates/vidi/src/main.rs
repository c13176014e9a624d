//! `vidi`: one binary for every role.

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Run the API and the workers of every lane in this process: `VIDI_WORKERS` encoding
    /// workers, `VIDI_HEAD_WORKERS` for each video's first playable half-second and
    /// `VIDI_SHORT_WORKERS` for probes, assemblies and imports (`VIDI_WORKERS=0`: the API alone,
    /// which only queues work). SIGTERM or SIGINT stops it gracefully.
    Serve,
    /// Run workers only (every lane), sharing the database and the media store with API nodes.
    /// SIGTERM or SIGINT stops it, handing running jobs back to the queue.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage workspaces (tenants: every key and every video belongs to one).
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Manage API keys.
    ApiKey {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Player analytics.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print the effective configuration, one `VIDI_*` variable a line with where its value came
    /// from (secrets masked), after checking it as `serve` would.
    Config,
    /// Check what a node needs with this configuration: ffmpeg and ffprobe (version, encoders),
    /// the database, the media store (a write, read and delete), the ports, Landlock and the
    /// clock. Exits 1 if anything fails.
    Doctor,
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace and print its id alone on stdout.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// Print a video's or a live stream's quality of experience over a period as a table: what
    /// `GET /analytics/videos/{id}/qoe` answers (docs/analytics.md).
    Report {
        /// The video (`vi…`).
        #[arg(long, conflicts_with = "live_stream", required_unless_present = "live_stream")]
        video: Option<String>,
        /// The live stream (`li…`).
        #[arg(long)]
        live_stream: Option<String>,
        /// `YYYY-MM-DD`, `YYYY-Www`, `YYYY-MM`, `YYYY` or `YYYY-MM-DD/YYYY-MM-DD` (UTC).
        #[arg(long)]
        period: String,
    },
    /// Stream every raw player event emitted within a period (every workspace's) to stdout, in
    /// time order, one per line: `csv` (with a header) or `ndjson`.
    Export {
        /// `YYYY-MM-DD`, `YYYY-Www`, `YYYY-MM`, `YYYY` or `YYYY-MM-DD/YYYY-MM-DD` (UTC).
        #[arg(long)]
        period: String,
        #[arg(long, value_parser = ["csv", "ndjson"], default_value = "ndjson")]
        format: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key and print it alone on stdout (it is stored hashed: this is the only time it is shown).
    Create {
        #[arg(long, default_value = "cli")]
        name: String,
        /// The workspace (`ws…`) the key opens; default: the oldest, created if there is none.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// List every key, one a line: id, workspace, name, created, active or revoked (never the secret).
    List,
    /// Revoke a key, given by its id (`ak…`) or the key itself, and print its id. Its Basic auth,
    /// access tokens and refresh tokens stop working on every node within 30 s.
    Revoke {
        #[arg(value_name = "KEY_OR_ID")]
        key_or_id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match cli.command {
        Command::Config => {
            logs(false);
            vidi::config::describe(cli.config.as_deref(), &vidi::config::env_vars())
                .map(|text| print!("{text}"))
                .map_err(anyhow::Error::from)
        }
        // The configuration is read and checked before anything starts, the log format with it.
        command => Config::load(cli.config).and_then(|cfg| {
            logs(cfg.ops.log_json);
            tokio::runtime::Runtime::new()?.block_on(run(command, cfg))
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        // One line, without the backtrace `main() -> Result` would print: what went wrong and,
        // for a refused setting, its name as written and what it accepts.
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', "; "));
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `VIDI_LOG`: text for a terminal or journald, or one JSON object a
/// line (`VIDI_LOG_FORMAT=json`) for a collector, with the request's span (method, route,
/// `request_id`) on every line logged while serving it.
fn logs(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("VIDI_LOG").unwrap_or_else(|_| vidi::config::LOG_DEFAULT.into());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        fmt.json().with_current_span(true).with_span_list(false).init();
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}

async fn run(command: Command, cfg: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let server = vidi::start_with_shutdown(cfg, vidi::shutdown_on_signals()?).await?;
            if let Some(key) = &server.first_key {
                println!("Vidi is running at {}", server.url);
                println!("API key (shown once): {key}");
                if let Some(a) = server.rtmp_addr {
                    println!(
                        "Live ingest: rtmp://{a}/s/{{streamKey}} (OBS: server rtmp://{a}/s, key = the live stream's streamKey)"
                    );
                }
                println!("Try: curl -u {key}: {}/videos", server.url);
            } else {
                println!("Vidi is running at {}", server.url);
            }
            server.wait().await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Worker => {
            vidi::run_workers(cfg, vidi::shutdown_on_signals()?).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            vidi::open_repo(&cfg).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Workspace { command: WorkspaceCommand::Create { name } } => {
            let repo = vidi::open_repo(&cfg).await?;
            println!("{}", repo.create_workspace(&name).await?);
            Ok(())
        }
        Command::ApiKey { command } => {
            let repo = vidi::open_repo(&cfg).await?;
            match command {
                KeyCommand::Create { name, workspace } => {
                    println!("{}", vidi::create_key(repo.as_ref(), &name, workspace.as_deref()).await?);
                }
                KeyCommand::List => {
                    for line in vidi::key_lines(&repo.list_api_keys().await?) {
                        println!("{line}");
                    }
                }
                KeyCommand::Revoke { key_or_id } => {
                    let id = vidi::revoke_key(repo.as_ref(), &key_or_id).await?;
                    println!("{id}");
                    eprintln!("revoked {id}: it stops working on every node within 30 s");
                }
            }
            Ok(())
        }
        Command::Analytics { command: AnalyticsCommand::Report { video, live_stream, period } } => {
            use vidi_core::id::{LiveStreamId, MediaId, VideoId};
            let repo = vidi::open_repo(&cfg).await?;
            let span = vidi_core::analytics::Period::parse(&period, false).ok_or_else(|| {
                anyhow::anyhow!("invalid period {period:?}: expected YYYY-MM-DD, YYYY-Www, YYYY-MM, YYYY or a range")
            })?;
            let (media, ws) = match (video, live_stream) {
                (Some(v), _) => {
                    let id = VideoId::parse(&v).ok_or_else(|| anyhow::anyhow!("not a video id: {v}"))?;
                    let ws =
                        repo.video_for_delivery(&id).await.map_err(|e| anyhow::anyhow!("video {v}: {e}"))?.workspace_id;
                    (MediaId::Video(id), ws)
                }
                (None, Some(l)) => {
                    let id = LiveStreamId::parse(&l).ok_or_else(|| anyhow::anyhow!("not a live stream id: {l}"))?;
                    let ws = repo
                        .live_stream_for_delivery(&id)
                        .await
                        .map_err(|e| anyhow::anyhow!("live stream {l}: {e}"))?
                        .workspace_id;
                    (MediaId::LiveStream(id), ws)
                }
                (None, None) => unreachable!("clap requires one"),
            };
            let q = repo.qoe_summary(&ws, &media, span).await?;
            print!("{}", vidi::qoe_table(&media, &period, &q));
            Ok(())
        }
        Command::Analytics { command: AnalyticsCommand::Export { period, format } } => {
            use std::io::Write;
            let repo = vidi::open_repo(&cfg).await?;
            let span = vidi_core::analytics::Period::parse(&period, false).ok_or_else(|| {
                anyhow::anyhow!("invalid period {period:?}: expected YYYY-MM-DD, YYYY-Www, YYYY-MM, YYYY or a range")
            })?;
            let csv = format == "csv";
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if csv {
                writeln!(out, "{}", vidi::EXPORT_CSV_HEADER)?;
            }
            // A reader that stops early (`| head`) ends the export, not as a failure.
            let quiet = |r: std::io::Result<()>| match r {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
                Err(e) => Err(e),
                Ok(()) => Ok(true),
            };
            // A page at a time: memory stays flat whatever the period holds.
            let mut after = None;
            loop {
                let rows = repo.export_player_events(span, after.take(), 5000).await?;
                for r in &rows {
                    if !quiet(writeln!(out, "{}", vidi::export_line(r, csv)))? {
                        return Ok(());
                    }
                }
                match rows.last() {
                    Some(last) if rows.len() == 5000 => {
                        after = Some((last.event.emitted_at, last.event.session_id.clone(), last.event.seq));
                    }
                    _ => break,
                }
            }
            quiet(out.flush())?;
            Ok(())
        }
        Command::Openapi => {
            print!("{}", vidi_api::openapi::document());
            Ok(())
        }
        Command::Doctor => {
            vidi::install_crypto();
            let (text, ok) = vidi::doctor::report(&vidi::doctor::run(&cfg).await);
            print!("{text}");
            if ok { Ok(()) } else { anyhow::bail!("some checks failed") }
        }
        Command::Config => unreachable!("answered before the runtime starts"),
    }
}
