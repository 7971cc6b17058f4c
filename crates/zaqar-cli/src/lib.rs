//! `zaqar`, the command-line client of the v2 HTTP API (binary `src/bin/zaqar.rs`).
//!
//! Commands and options follow `openstack queue ...` / `openstack messaging ...` where those
//! exist: `zaqar queue create NAME`, `zaqar message post QUEUE --messages JSON`,
//! `zaqar claim create QUEUE --ttl --grace --limit`, `zaqar subscription create QUEUE
//! SUBSCRIBER --ttl`. Output is a table, JSON or bare values (`-f table|json|value`).
//!
//! - `client`: Keystone password authentication (the `OS_*` variables of the openstack CLI) or
//!   none (`--os-project-id`), and one request function that maps Zaqar's error bodies.
//! - `commands`: one function per command.
//! - `bulk`: posting many messages and draining a queue, with a progress bar.
//! - `output`: tables, JSON, values.

pub mod bulk;
pub mod client;
pub mod commands;
pub mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use client::{CliError, Settings};
use output::Format;

#[derive(Parser, Debug)]
#[command(
    name = "zaqar",
    version,
    about = "Command-line client of the Zaqar v2 messaging API",
    after_help = "Authentication: without OS_AUTH_URL, requests carry X-Project-ID from \
                  --os-project-id (ZAQAR_PROJECT_ID). With OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, \
                  OS_PROJECT_NAME (and OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME), a Keystone \
                  token is obtained and the endpoint is taken from the catalog unless --url is \
                  given."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Base URL of the Zaqar API (default http://127.0.0.1:8888, or the Keystone catalog's).
    #[arg(long, env = "ZAQAR_URL", global = true, visible_alias = "os-endpoint")]
    pub url: Option<String>,
    /// Project of requests to a server without authentication (X-Project-ID).
    #[arg(long = "os-project-id", env = "ZAQAR_PROJECT_ID", global = true)]
    pub project_id: Option<String>,
    /// Client-ID header (a UUID); a random one per invocation by default.
    #[arg(long = "client-id", env = "ZAQAR_CLIENT_ID", global = true)]
    pub client_id: Option<String>,
    /// Roles sent to a server without authentication (X-Roles), e.g. admin.
    #[arg(long = "os-roles", env = "ZAQAR_ROLES", global = true)]
    pub roles: Option<String>,
    /// Keystone URL (enables Keystone password authentication).
    #[arg(long = "os-auth-url", env = "OS_AUTH_URL", global = true)]
    pub auth_url: Option<String>,
    #[arg(long = "os-username", env = "OS_USERNAME", global = true)]
    pub username: Option<String>,
    #[arg(
        long = "os-password",
        env = "OS_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub password: Option<String>,
    #[arg(long = "os-project-name", env = "OS_PROJECT_NAME", global = true)]
    pub project_name: Option<String>,
    #[arg(
        long = "os-user-domain-name",
        env = "OS_USER_DOMAIN_NAME",
        global = true,
        default_value = "Default"
    )]
    pub user_domain_name: String,
    #[arg(
        long = "os-project-domain-name",
        env = "OS_PROJECT_DOMAIN_NAME",
        global = true,
        default_value = "Default"
    )]
    pub project_domain_name: String,
    /// A Keystone token to use as it is (no password authentication).
    #[arg(
        long = "os-token",
        env = "OS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Catalog interface of the endpoint.
    #[arg(
        long = "os-interface",
        env = "OS_INTERFACE",
        global = true,
        default_value = "public"
    )]
    pub interface: String,
    #[arg(long = "os-region-name", env = "OS_REGION_NAME", global = true)]
    pub region: Option<String>,
    /// Output format.
    #[arg(short = 'f', long = "format", global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Seconds each request may take.
    #[arg(long, global = true, default_value_t = 60)]
    pub timeout: u64,
}

impl GlobalOpts {
    fn settings(&self) -> Settings {
        Settings {
            url: self.url.clone(),
            client_id: self.client_id.clone(),
            project_id: self.project_id.clone().or_else(|| {
                std::env::var("OS_PROJECT_ID")
                    .ok()
                    .filter(|v| !v.is_empty())
            }),
            roles: self.roles.clone(),
            token: self.token.clone(),
            auth_url: self.auth_url.clone().filter(|u| !u.is_empty()),
            username: self.username.clone(),
            password: self.password.clone(),
            project_name: self.project_name.clone(),
            user_domain_name: self.user_domain_name.clone(),
            project_domain_name: self.project_domain_name.clone(),
            interface: self.interface.clone(),
            region: self.region.clone(),
            timeout: Duration::from_secs(self.timeout.max(1)),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Queues: create, list, show, set metadata, stats, purge, delete, signed URLs.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Messages: post, list, get, delete, pop, drain.
    #[command(subcommand)]
    Message(MessageCmd),
    /// Claims: create, query, renew, release.
    #[command(subcommand)]
    Claim(ClaimCmd),
    /// Subscriptions of a queue (or, with --topic, of a topic).
    #[command(subcommand)]
    Subscription(SubscriptionCmd),
    /// Topics: create, list, show, set metadata, stats, purge, delete, post, messages.
    #[command(subcommand)]
    Topic(TopicCmd),
    /// Storage pools (admin; the server must run with pooling).
    #[command(subcommand)]
    Pool(PoolCmd),
    /// Flavors (sets of pools; admin).
    #[command(subcommand)]
    Flavor(FlavorCmd),
    /// Checks that the server answers (GET /v2/ping).
    Ping,
    /// The server's detailed health report (GET /v2/health; admin).
    Health,
    /// The API's home document (GET /v2/).
    Homedoc,
    /// Prints a shell completion script: `source <(zaqar completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// Creates a queue (PUT; an existing queue is left as it is).
    Create {
        name: String,
        /// Metadata of the new queue, a JSON object.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Lists queues.
    List(ListOpts),
    /// Shows a queue's metadata.
    #[command(visible_alias = "get-metadata")]
    Show { name: String },
    /// Replaces a queue's metadata with a JSON object (reserved `_` keys absent from it are
    /// kept).
    SetMetadata { name: String, metadata: String },
    /// Message counts of a queue.
    Stats { name: String },
    /// Deletes a queue's messages and/or subscriptions.
    Purge {
        name: String,
        /// messages, subscriptions (default: both).
        #[arg(long = "resource-types", value_delimiter = ',')]
        resource_types: Vec<String>,
    },
    /// Deletes a queue with its messages.
    Delete { name: String },
    /// Creates a pre-signed URL of a queue (POST .../share).
    #[command(visible_alias = "share")]
    SignedUrl {
        name: String,
        /// Resources: messages, subscriptions, claims (default messages).
        #[arg(long, value_delimiter = ',')]
        paths: Vec<String>,
        /// HTTP methods allowed (default GET).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// Lifetime of the URL in seconds (default: one day).
        #[arg(long = "ttl-seconds")]
        ttl_seconds: Option<i64>,
        /// Expiry as an ISO-8601 time (instead of --ttl-seconds).
        #[arg(long, conflicts_with = "ttl_seconds")]
        expires: Option<String>,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct ListOpts {
    #[arg(long)]
    pub limit: Option<u32>,
    /// Name after which to start.
    #[arg(long)]
    pub marker: Option<String>,
    /// Include metadata.
    #[arg(long)]
    pub detailed: bool,
    /// Also print the total number (queues only).
    #[arg(long = "with-count")]
    pub with_count: bool,
    /// Only names containing this text.
    #[arg(long)]
    pub name: Option<String>,
    /// Every page, not only the first (pages of --limit, following each page's marker).
    #[arg(long, conflicts_with = "marker")]
    pub all: bool,
}

/// Options of a message listing.
#[derive(Args, Debug, Clone, Default)]
pub struct MessageListOpts {
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub marker: Option<String>,
    /// Include messages posted by this client (Client-ID).
    #[arg(long)]
    pub echo: bool,
    #[arg(long = "include-claimed")]
    pub include_claimed: bool,
    #[arg(long = "include-delayed")]
    pub include_delayed: bool,
    /// Every page, not only the first (pages of --limit, following each page's marker).
    #[arg(long, conflicts_with = "marker")]
    pub all: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct PostInput {
    /// Messages as JSON: a list of {"body": ..., "ttl": ..., "delay": ...} objects, or
    /// {"messages": [...]}.
    #[arg(long, conflicts_with_all = ["file", "body"])]
    pub messages: Option<String>,
    /// Read messages from a file (`-` for standard input): a JSON document as for --messages,
    /// or JSON lines, one message or bare body per line.
    #[arg(long, conflicts_with = "body")]
    pub file: Option<PathBuf>,
    /// Post --count copies of this body (JSON); without it, bodies are {"n": <index>}.
    #[arg(long)]
    pub body: Option<String>,
    /// Number of messages to post with --body (or generated bodies).
    #[arg(long)]
    pub count: Option<u64>,
    /// TTL (seconds) of messages that do not set one.
    #[arg(long)]
    pub ttl: Option<i64>,
    /// Delay (seconds) of messages that do not set one.
    #[arg(long)]
    pub delay: Option<i64>,
    /// Messages per request when posting many.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Requests in flight when posting many. 1 (the default) keeps the messages' order; more
    /// posts faster but batches may land out of order.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// No progress bar.
    #[arg(long = "no-progress")]
    pub no_progress: bool,
}

#[derive(Subcommand, Debug)]
pub enum MessageCmd {
    /// Posts messages (from --messages, --file or stdin, or --count generated ones).
    Post {
        queue: String,
        #[command(flatten)]
        input: PostInput,
    },
    /// Lists messages.
    List {
        queue: String,
        #[command(flatten)]
        opts: MessageListOpts,
    },
    /// Gets messages by id.
    Get {
        queue: String,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Deletes messages by id (a claimed one needs --claim-id).
    Delete {
        queue: String,
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long = "claim-id")]
        claim_id: Option<String>,
    },
    /// Removes and prints up to --count unclaimed messages.
    Pop {
        queue: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Claims and deletes messages until the queue has none left to claim.
    Drain {
        queue: String,
        /// Messages per claim.
        #[arg(long, default_value_t = 10)]
        batch: u32,
        /// Stop after this many messages.
        #[arg(long)]
        max: Option<u64>,
        /// TTL of the claims (seconds).
        #[arg(long, default_value_t = 60)]
        ttl: i64,
        #[arg(long = "no-progress")]
        no_progress: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClaimCmd {
    /// Claims messages of a queue.
    Create {
        queue: String,
        /// Seconds the claim lasts.
        #[arg(long, default_value_t = 300)]
        ttl: i64,
        /// Seconds the claimed messages outlive the claim.
        #[arg(long, default_value_t = 60)]
        grace: i64,
        /// Most messages to claim.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Shows a claim and its messages.
    Query { queue: String, claim_id: String },
    /// Renews a claim.
    Renew {
        queue: String,
        claim_id: String,
        #[arg(long, default_value_t = 300)]
        ttl: i64,
        #[arg(long, default_value_t = 60)]
        grace: i64,
    },
    /// Releases a claim (its messages can be claimed again).
    Release { queue: String, claim_id: String },
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionCmd {
    /// Subscribes a URI (http(s)://..., mailto:...) to a queue.
    Create {
        queue: String,
        subscriber: String,
        /// Seconds the subscription lives.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// Options, a JSON object.
        #[arg(long)]
        options: Option<String>,
        /// The source is a topic, not a queue.
        #[arg(long)]
        topic: bool,
    },
    /// Lists the subscriptions of a queue.
    List {
        queue: String,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        marker: Option<String>,
        #[arg(long)]
        topic: bool,
    },
    /// Shows a subscription.
    Show {
        queue: String,
        id: String,
        #[arg(long)]
        topic: bool,
    },
    /// Changes a subscription's subscriber, ttl or options.
    Update {
        queue: String,
        id: String,
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(long)]
        ttl: Option<i64>,
        #[arg(long)]
        options: Option<String>,
        #[arg(long)]
        topic: bool,
    },
    /// Deletes a subscription.
    Delete {
        queue: String,
        id: String,
        #[arg(long)]
        topic: bool,
    },
    /// Confirms a subscription (or, with --unconfirm, withdraws the confirmation).
    Confirm {
        queue: String,
        id: String,
        #[arg(long)]
        unconfirm: bool,
        #[arg(long)]
        topic: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TopicCmd {
    /// Creates a topic.
    Create {
        name: String,
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Lists topics.
    List(ListOpts),
    /// Shows a topic's metadata.
    Show { name: String },
    /// Replaces a topic's metadata with a JSON object.
    SetMetadata { name: String, metadata: String },
    /// Message counts of a topic.
    Stats { name: String },
    /// Deletes a topic's messages and/or subscriptions.
    Purge {
        name: String,
        #[arg(long = "resource-types", value_delimiter = ',')]
        resource_types: Vec<String>,
    },
    /// Deletes a topic.
    Delete { name: String },
    /// Posts messages to a topic (fanned out to its subscribers).
    Post {
        name: String,
        #[command(flatten)]
        input: PostInput,
    },
    /// Lists a topic's messages.
    Messages {
        name: String,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        marker: Option<String>,
        #[arg(long)]
        echo: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PoolCmd {
    /// Registers a pool.
    Create {
        name: String,
        uri: String,
        weight: u64,
        #[arg(long)]
        flavor: Option<String>,
        /// Backend options, a JSON object.
        #[arg(long)]
        options: Option<String>,
    },
    /// Lists pools.
    List {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        marker: Option<String>,
        #[arg(long)]
        detailed: bool,
    },
    /// Shows a pool.
    Show {
        name: String,
        #[arg(long)]
        detailed: bool,
    },
    /// Changes a pool.
    Update {
        name: String,
        #[arg(long)]
        uri: Option<String>,
        #[arg(long)]
        weight: Option<u64>,
        /// The pool's flavor ("" clears it).
        #[arg(long)]
        flavor: Option<String>,
        #[arg(long)]
        options: Option<String>,
    },
    /// Deletes a pool.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum FlavorCmd {
    /// Creates a flavor from pools.
    Create {
        name: String,
        #[arg(long = "pool-list", value_delimiter = ',', required = true)]
        pool_list: Vec<String>,
    },
    /// Lists flavors.
    List {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        marker: Option<String>,
        #[arg(long)]
        detailed: bool,
    },
    /// Shows a flavor.
    Show { name: String },
    /// Changes a flavor's pools.
    Update {
        name: String,
        #[arg(long = "pool-list", value_delimiter = ',', required = true)]
        pool_list: Vec<String>,
    },
    /// Deletes a flavor.
    Delete { name: String },
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completion { shell } = cli.command {
        let mut cmd = Cli::command();
        // Rendered first: clap_complete panics when its writer fails (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "zaqar", &mut script);
        return match output::write_stdout(&script) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zaqar: cannot write the completion script: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zaqar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = cli.global.format;
    match runtime.block_on(run(cli)) {
        Ok(out) => match output::print(&out, format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zaqar: cannot write the output: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("ERROR: {e}");
            match e {
                CliError::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Runs one parsed command and returns what to print.
pub async fn run(cli: Cli) -> client::Result<output::Output> {
    let client = client::Client::connect(&cli.global.settings()).await?;
    commands::dispatch(&client, cli.command).await
}
