//! `zaqar-server`: the Zaqar v2 API server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use zaqar_core::clock::SystemClock;
use zaqar_server::app::{shutdown_signal, App};
use zaqar_server::config::{
    reference_document, reference_markdown, Config, LogFormat, Origin, RawConfig,
};

#[derive(Parser, Debug)]
#[command(
    name = "zaqar-server",
    version,
    about = "Zaqar v2 messaging service (HTTP API, durable embedded store)",
    after_long_help = long_help()
)]
struct Args {
    /// A zaqar.conf-style INI file; may be given several times (later files win).
    #[arg(long = "config-file", value_name = "FILE")]
    config_files: Vec<PathBuf>,
    /// Address to listen on ([drivers:transport:wsgi] bind).
    #[arg(long)]
    bind: Option<String>,
    /// Port to listen on ([drivers:transport:wsgi] port).
    #[arg(long)]
    port: Option<u16>,
    /// Directory of the embedded store ([drivers:message_store:embedded] path).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Set any option: SECTION.OPTION=VALUE, e.g. --set transport.max_messages_per_page=10
    #[arg(long = "set", value_name = "SECTION.OPTION=VALUE")]
    set: Vec<String>,
    /// Treat unknown options as errors instead of warnings.
    #[arg(long)]
    strict_config: bool,
    /// Print the reference of every configuration option (docs/configuration.md) and exit.
    #[arg(long)]
    print_config_reference: bool,
    /// Load and validate the configuration, print its warnings, and exit (0 when valid).
    #[arg(long)]
    check_config: bool,
}

fn long_help() -> String {
    format!(
        "Configuration precedence: defaults < --config-file < ZAQAR_<SECTION>__<OPTION> \
         environment variables < command-line flags.\n\nOptions:\n{}",
        reference_markdown()
    )
}

fn load(args: &Args) -> Result<(Config, Vec<String>), String> {
    let mut raw = RawConfig::default();
    for f in &args.config_files {
        raw.load_file(f).map_err(|e| e.0)?;
    }
    let unknown_env = raw.load_env(std::env::vars());
    let verdict = if args.strict_config {
        "is not allowed"
    } else {
        "is ignored"
    };
    let mut warnings: Vec<String> = unknown_env
        .into_iter()
        .map(|v| format!("environment variable {v} names no known option and {verdict}"))
        .collect();
    for s in &args.set {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("--set {s}: expected SECTION.OPTION=VALUE"))?;
        let (section, option) = key
            .rsplit_once('.')
            .ok_or_else(|| format!("--set {s}: expected SECTION.OPTION=VALUE"))?;
        raw.set(section, option, value, Origin::Cli);
    }
    if let Some(b) = &args.bind {
        raw.set("drivers:transport:wsgi", "bind", b, Origin::Cli);
    }
    if let Some(p) = args.port {
        raw.set(
            "drivers:transport:wsgi",
            "port",
            &p.to_string(),
            Origin::Cli,
        );
    }
    if let Some(d) = &args.data_dir {
        raw.set(
            "drivers:message_store:embedded",
            "path",
            &d.to_string_lossy(),
            Origin::Cli,
        );
    }
    if args.strict_config && !warnings.is_empty() {
        return Err(warnings.join("\n"));
    }
    let (config, w) = Config::from_raw(&raw, args.strict_config).map_err(|e| e.0)?;
    warnings.extend(w.into_iter().map(|w| w.0));
    Ok((config, warnings))
}

/// Logs (text or JSON, filtered by `ZAQAR_LOG` or `debug`) and, in builds with the `otel`
/// feature, span export (`[opentelemetry]`), which has its own filter (info and above).
fn init_logging(config: &Config) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let default = if config.debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_env("ZAQAR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},hyper=warn,h2=warn")));
    let fmt = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
    };
    let logs = tracing_subscriber::registry().with(fmt.with_filter(filter));
    #[cfg(feature = "otel")]
    {
        let spans = zaqar_server::admin::otel::layer(&config.otel)?
            .map(|l| l.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
        logs.with(spans).init();
    }
    #[cfg(not(feature = "otel"))]
    {
        if config.otel.enabled {
            return Err(
                "[opentelemetry] enabled = true, but this build has no OpenTelemetry \
                        support (build with --features otel)"
                    .into(),
            );
        }
        logs.init();
    }
    Ok(())
}

// `--print-config-reference` and `--check-config` answer on standard output, as a command
// line tool does (the server logs through tracing).
#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_config_reference {
        print!("{}", reference_document());
        return ExitCode::SUCCESS;
    }
    let (config, warnings) = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            // One line per mistake: every one of them is reported at once.
            for line in e.lines() {
                eprintln!("zaqar-server: configuration error: {line}");
            }
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        for w in &warnings {
            eprintln!("zaqar-server: warning: {w}");
        }
        println!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = init_logging(&config) {
        eprintln!("zaqar-server: configuration error: {e}");
        return ExitCode::from(2);
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zaqar-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let app = App::build(config, Arc::new(SystemClock)).await?;
        let listener = app.bind().await?;
        tracing::info!(
            addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            data_dir = %app.config.embedded.path.display(),
            "zaqar-server listening"
        );
        app.serve(listener, shutdown_signal()).await
    });
    #[cfg(feature = "otel")]
    zaqar_server::admin::otel::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zaqar-server: {e}");
            ExitCode::FAILURE
        }
    }
}
