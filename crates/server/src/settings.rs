//! Typed settings, layered: built-in defaults, then the TOML file (`--config`), then
//! `CASEGATE_*` environment variables, then command-line flags. Each option's `///` doc is its
//! `--help` text; every flag has its environment twin.
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use std::path::PathBuf;

/// casegate: case management for financial-crime compliance teams.
#[derive(Debug, Parser)]
#[command(name = "casegate", version, about, long_about = None)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub options: Options,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the console and the background workers.
    Serve,
    /// Create or refresh the sandbox tenant (one user and a fresh API key per built-in role).
    Demo {
        /// Slug of the sandbox tenant.
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// Print one JSON object on stdout (logs go to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Apply the embedded database migrations and exit.
    Migrate,
    /// Manage organisations.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Audit trail operations.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every tenant's hash chain and check its signed checkpoints; prints one line per
    /// broken tenant naming the first broken seq and exits 1 when any is broken.
    Verify {
        /// Check only this tenant (slug or id).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Tenant subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create an organisation with its first administrator; prints the administrator's API key.
    Create {
        /// URL-safe name, e.g. `acme-bank`.
        #[arg(long)]
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Email of the first administrator.
        #[arg(long)]
        admin_email: String,
        /// Password of the first administrator (else API-key access only). Prefer the
        /// environment variable so the password stays out of shell history.
        #[arg(long, env = "CASEGATE_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
}

/// Which parts of the server a process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// API and workers.
    #[default]
    All,
    /// Only the HTTP API.
    Api,
    /// Only the background workers.
    Worker,
}

/// Every option, all optional: unset ones fall through to the next layer.
#[derive(Clone, Debug, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// TOML settings file (keys as the long flags, with underscores).
    #[arg(long, env = "CASEGATE_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CASEGATE_LISTEN", global = true)]
    pub listen: Option<String>,
    /// Directory for the SQLite database, keys and uploads [default: ./casegate-data].
    #[arg(long, env = "CASEGATE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…` [default: sqlite://<data dir>/casegate.db].
    #[arg(
        long,
        env = "CASEGATE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<Redacted>,
    /// all, api or worker [default: all].
    #[arg(long, env = "CASEGATE_ROLE", global = true)]
    pub role: Option<Role>,
    /// Create the sandbox tenant at start and print its keys.
    #[arg(long, env = "CASEGATE_DEMO", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Allow plain-HTTP webhooks to loopback addresses (development only).
    #[arg(long, env = "CASEGATE_ALLOW_INSECURE_WEBHOOKS", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_webhooks: Option<bool>,
    /// Allow webhooks to private network addresses (RFC 1918, unique-local), for receivers
    /// inside the operator's network; link-local and metadata addresses stay refused.
    #[arg(long, env = "CASEGATE_ALLOW_PRIVATE_WEBHOOKS", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_webhooks: Option<bool>,
    /// Seconds one webhook attempt may take, 1-30 [default: 10]; a deliverer that dies leaves
    /// its deliveries to others after six times this.
    #[arg(long, env = "CASEGATE_WEBHOOK_TIMEOUT_SECS", global = true)]
    pub webhook_timeout_secs: Option<u64>,
    /// Largest JSON body in bytes [default: 1048576].
    #[arg(long, env = "CASEGATE_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    /// Largest case attachment upload in bytes [default: 26214400].
    #[arg(long, env = "CASEGATE_MAX_ATTACHMENT_BYTES", global = true)]
    pub max_attachment_bytes: Option<usize>,
    /// Requests a minute per credential, 0 = unlimited [default: 600].
    #[arg(long, env = "CASEGATE_RATE_LIMIT_PER_MINUTE", global = true)]
    pub rate_limit_per_minute: Option<u32>,
    /// Login attempts a minute per client address, 0 = unlimited [default: 20].
    #[arg(long, env = "CASEGATE_LOGIN_ATTEMPTS_PER_MINUTE", global = true)]
    pub login_attempts_per_minute: Option<u32>,
    /// Seconds before a request is abandoned with 503 [default: 30].
    #[arg(long, env = "CASEGATE_REQUEST_TIMEOUT_SECS", global = true)]
    pub request_timeout_secs: Option<u64>,
    /// How often timers, exports, checkpoints and e-mail are polled, in milliseconds
    /// [default: 1000].
    #[arg(long, env = "CASEGATE_WORKER_TICK_MS", global = true)]
    pub worker_tick_ms: Option<u64>,
    /// How often the outbox is dispatched and webhooks delivered, in milliseconds (the bound
    /// on commit-to-delivery latency when idle) [default: 100].
    #[arg(long, env = "CASEGATE_DELIVERY_TICK_MS", global = true)]
    pub delivery_tick_ms: Option<u64>,
    /// SMTP relay for e-mail copies of notifications: `smtp://host:port`,
    /// `smtp://user:password@host:587?tls=required` or `smtps://host:465` [default: none, no
    /// e-mail].
    #[arg(long, env = "CASEGATE_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<Redacted>,
    /// The `From` address of notification e-mails [default: casegate@localhost].
    #[arg(long, env = "CASEGATE_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,
    /// FinCEN's SAR XML batch schema (`EFL_SARXBatchSchema.xsd`) to check FinCEN documents
    /// against [default: none: the schema check is skipped and the answer says so].
    #[arg(long, env = "CASEGATE_FINCEN_XSD", global = true)]
    pub fincen_xsd: Option<PathBuf>,
    /// The goAML schema (`goAMLSchema.xsd`) your FIU issued [default: none: skipped].
    #[arg(long, env = "CASEGATE_GOAML_XSD", global = true)]
    pub goaml_xsd: Option<PathBuf>,
    /// The XSD validator program, libxml2's `xmllint` [default: xmllint, from PATH].
    #[arg(long, env = "CASEGATE_XMLLINT", global = true)]
    pub xmllint: Option<PathBuf>,
    /// Database connection pool size [default: 16].
    #[arg(long, env = "CASEGATE_DB_MAX_CONNECTIONS", global = true)]
    pub db_max_connections: Option<u32>,
    /// The `<env>` of generated API keys, `cg_<env>_…` [default: live].
    #[arg(long, env = "CASEGATE_KEY_ENV", global = true)]
    pub key_env: Option<String>,
    /// Session lifetime in minutes [default: 480].
    #[arg(long, env = "CASEGATE_SESSION_TTL_MINUTES", global = true)]
    pub session_ttl_minutes: Option<i64>,
    /// Seconds a resolved credential is served from memory [default: 10].
    #[arg(long, env = "CASEGATE_AUTH_CACHE_TTL_SECS", global = true)]
    pub auth_cache_ttl_secs: Option<u64>,
    /// JWKS URL of the identity provider; enables JWT bearer tokens.
    #[arg(long, env = "CASEGATE_JWKS_URL", global = true)]
    pub jwks_url: Option<String>,
    /// Required JWT `iss`.
    #[arg(long, env = "CASEGATE_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// Required JWT `aud`.
    #[arg(long, env = "CASEGATE_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// JWT claim holding the tenant id or slug [default: org_id].
    #[arg(long, env = "CASEGATE_JWT_TENANT_CLAIM", global = true)]
    pub jwt_tenant_claim: Option<String>,
    /// JWT claim holding the roles [default: roles].
    #[arg(long, env = "CASEGATE_JWT_ROLES_CLAIM", global = true)]
    pub jwt_roles_claim: Option<String>,
    /// Clock skew tolerated on JWT `exp`/`nbf`, in seconds [default: 30].
    #[arg(long, env = "CASEGATE_JWT_LEEWAY_SECS", global = true)]
    pub jwt_leeway_secs: Option<i64>,
    /// Ed25519 key file signing audit checkpoints and exports [default: <data dir>/audit-signing.key].
    #[arg(long, env = "CASEGATE_AUDIT_KEY_FILE", global = true)]
    pub audit_key_file: Option<PathBuf>,
    /// Key sealing secrets at rest (webhook signing secrets), created on first start
    /// [default: <data dir>/secrets.key]. Every process sharing a database needs the same file.
    #[arg(long, env = "CASEGATE_SECRETS_KEY_FILE", global = true)]
    pub secrets_key_file: Option<PathBuf>,
    /// Minutes between automatic audit checkpoints of a tenant whose chain moved [default: 60].
    #[arg(long, env = "CASEGATE_AUDIT_CHECKPOINT_MINUTES", global = true)]
    pub audit_checkpoint_minutes: Option<i64>,
    /// Days audit events are kept at the least; at least 1827 (five years, 31 CFR 1010.430(d))
    /// [default: 2557, seven years]. casegate has no path that deletes audit events at all.
    #[arg(long, env = "CASEGATE_AUDIT_RETENTION_DAYS", global = true)]
    pub audit_retention_days: Option<i64>,
    /// Days a settled outbox event (fanned out to webhooks, post-actions done) is kept before
    /// the worker purges it; at least 1 [default: 30]. Webhook deliveries keep their own copy
    /// of what they send, so redelivery does not depend on it.
    #[arg(long, env = "CASEGATE_OUTBOX_RETENTION_DAYS", global = true)]
    pub outbox_retention_days: Option<i64>,
    /// Most events one JSON or CSV audit export may hold [default: 1000000].
    #[arg(long, env = "CASEGATE_AUDIT_EXPORT_MAX_EVENTS", global = true)]
    pub audit_export_max_events: Option<i64>,
    /// Log format: json or text [default: json].
    #[arg(long, env = "CASEGATE_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

macro_rules! layer {
    ($hi:expr, $lo:expr; $($f:ident),*) => {{
        let (hi, lo) = ($hi, $lo);
        Options { config: hi.config.or(lo.config), $($f: hi.$f.or(lo.$f),)* }
    }};
}

impl Options {
    /// `self` where set, else `lower`.
    pub fn over(self, lower: Options) -> Options {
        layer!(self, lower; listen, data_dir, database_url, role, demo, allow_insecure_webhooks, allow_private_webhooks, webhook_timeout_secs, max_body_bytes, max_attachment_bytes,
            rate_limit_per_minute, login_attempts_per_minute, request_timeout_secs, worker_tick_ms, delivery_tick_ms, smtp_url, smtp_from, fincen_xsd, goaml_xsd, xmllint, db_max_connections, key_env,
            session_ttl_minutes, auth_cache_ttl_secs, jwks_url, jwt_issuer, jwt_audience, jwt_tenant_claim,
            jwt_roles_claim, jwt_leeway_secs, audit_key_file, secrets_key_file, audit_checkpoint_minutes, audit_retention_days,
            outbox_retention_days, audit_export_max_events, log_format)
    }

    /// Reads a TOML settings file.
    pub fn from_toml_file(path: &std::path::Path) -> anyhow::Result<Options> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// A setting that may hold a password (a database URL): parsed like a string, never printed
/// by `Debug`, so a stray `?settings` in a log line leaks nothing.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// JWT verification settings.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// JWKS URL.
    pub jwks_url: String,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Tenant claim.
    pub tenant_claim: String,
    /// Roles claim.
    pub roles_claim: String,
    /// Tolerated skew in seconds.
    pub leeway_secs: i64,
}

/// Resolved settings. `Debug` is written by hand to keep the database URL out of logs.
#[derive(Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Process role.
    pub role: Role,
    /// Create the sandbox tenant at start.
    pub demo: bool,
    /// Plain-HTTP loopback webhooks allowed.
    pub allow_insecure_webhooks: bool,
    /// Webhooks to private network addresses allowed.
    pub allow_private_webhooks: bool,
    /// Seconds one webhook attempt may take.
    pub webhook_timeout_secs: u64,
    /// Largest JSON body.
    pub max_body_bytes: usize,
    /// Largest case attachment upload.
    pub max_attachment_bytes: usize,
    /// Requests a minute per credential.
    pub rate_limit_per_minute: u32,
    /// Login attempts a minute per client address.
    pub login_attempts_per_minute: u32,
    /// Request timeout.
    pub request_timeout_secs: u64,
    /// Worker poll interval.
    pub worker_tick_ms: u64,
    /// Outbox and webhook poll interval.
    pub delivery_tick_ms: u64,
    /// SMTP, when configured.
    pub smtp: Option<casegate_service::mail::SmtpConfig>,
    /// SAR filing schemas and validator.
    pub sar: casegate_service::sars::SarConfig,
    /// Pool size.
    pub db_max_connections: u32,
    /// API-key environment.
    pub key_env: String,
    /// Session lifetime.
    pub session_ttl_minutes: i64,
    /// Credential cache lifetime.
    pub auth_cache_ttl_secs: u64,
    /// JWT, when configured.
    pub jwt: Option<JwtSettings>,
    /// Audit signing key file.
    pub audit_key_file: PathBuf,
    /// Secrets-at-rest key file.
    pub secrets_key_file: PathBuf,
    /// Minutes between automatic checkpoints.
    pub audit_checkpoint_minutes: i64,
    /// Minimum audit retention, in days.
    pub audit_retention_days: i64,
    /// Days settled outbox events are kept.
    pub outbox_retention_days: i64,
    /// Most events per JSON/CSV audit export.
    pub audit_export_max_events: i64,
    /// `json` or `text`.
    pub log_format: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &Redacted(String::new()))
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Layers `cli` (flags and environment, as clap resolved them) over the TOML file it names
    /// over the defaults, and checks the result.
    pub fn resolve(cli: Options) -> anyhow::Result<Settings> {
        let file = match &cli.config {
            Some(p) => Options::from_toml_file(p)?,
            None => Options::default(),
        };
        let o = cli.over(file);
        let data_dir = o
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./casegate-data"));
        let database_url = o
            .database_url
            .map(|r| r.0)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("casegate.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("database_url must start with sqlite:// or postgres://");
        }
        let key_env = o.key_env.unwrap_or_else(|| "live".into());
        if !casegate_domain::credentials::valid_env(&key_env) {
            bail!("key_env must be 1-16 lowercase letters or digits");
        }
        let jwt = match o.jwks_url {
            Some(url) => Some(JwtSettings {
                jwks_url: url,
                issuer: o
                    .jwt_issuer
                    .context("jwt_issuer is required with jwks_url")?,
                audience: o
                    .jwt_audience
                    .context("jwt_audience is required with jwks_url")?,
                tenant_claim: o.jwt_tenant_claim.unwrap_or_else(|| "org_id".into()),
                roles_claim: o.jwt_roles_claim.unwrap_or_else(|| "roles".into()),
                leeway_secs: o.jwt_leeway_secs.unwrap_or(30),
            }),
            None => None,
        };
        let log_format = o.log_format.unwrap_or_else(|| "json".into());
        if !matches!(log_format.as_str(), "json" | "text") {
            bail!("log_format must be json or text");
        }
        let secrets_key_file = o
            .secrets_key_file
            .unwrap_or_else(|| data_dir.join("secrets.key"));
        let audit_key_file = o
            .audit_key_file
            .unwrap_or_else(|| data_dir.join("audit-signing.key"));
        let audit_retention_days = o
            .audit_retention_days
            .unwrap_or(casegate_service::DEFAULT_AUDIT_RETENTION_DAYS);
        if audit_retention_days < casegate_service::MIN_AUDIT_RETENTION_DAYS {
            bail!(
                "audit_retention_days must be at least {} (five years, 31 CFR 1010.430(d))",
                casegate_service::MIN_AUDIT_RETENTION_DAYS
            );
        }
        let outbox_retention_days = o
            .outbox_retention_days
            .unwrap_or(casegate_service::DEFAULT_OUTBOX_RETENTION_DAYS);
        if outbox_retention_days < 1 {
            bail!("outbox_retention_days must be at least 1");
        }
        let audit_export_max_events = o.audit_export_max_events.unwrap_or(1_000_000);
        if audit_export_max_events < 1 {
            bail!("audit_export_max_events must be positive");
        }
        let smtp = o.smtp_url.map(|u| casegate_service::mail::SmtpConfig {
            url: u.0,
            from: o.smtp_from.unwrap_or_else(|| "casegate@localhost".into()),
        });
        if let Some(cfg) = &smtp
            && let Err(e) = casegate_service::mail::check(cfg)
        {
            bail!("{}: {}", e.param.as_deref().unwrap_or("smtp"), e.message);
        }
        for (name, path) in [("fincen_xsd", &o.fincen_xsd), ("goaml_xsd", &o.goaml_xsd)] {
            if let Some(p) = path
                && !p.is_file()
            {
                bail!("{name}: {} is not a readable file", p.display());
            }
        }
        let sar = casegate_service::sars::SarConfig {
            fincen_xsd: o.fincen_xsd,
            goaml_xsd: o.goaml_xsd,
            validator: match o.xmllint {
                Some(program) => casegate_service::xsd::Validator { program },
                None => Default::default(),
            },
            ..Default::default()
        };
        Ok(Settings {
            listen: o.listen.unwrap_or_else(|| "127.0.0.1:8080".into()),
            data_dir,
            database_url,
            role: o.role.unwrap_or_default(),
            demo: o.demo.unwrap_or(false),
            allow_insecure_webhooks: o.allow_insecure_webhooks.unwrap_or(false),
            allow_private_webhooks: o.allow_private_webhooks.unwrap_or(false),
            webhook_timeout_secs: o.webhook_timeout_secs.unwrap_or(10).clamp(1, 30),
            max_body_bytes: o.max_body_bytes.unwrap_or(1024 * 1024),
            max_attachment_bytes: o.max_attachment_bytes.unwrap_or(25 * 1024 * 1024),
            rate_limit_per_minute: o.rate_limit_per_minute.unwrap_or(600),
            login_attempts_per_minute: o.login_attempts_per_minute.unwrap_or(20),
            request_timeout_secs: o.request_timeout_secs.unwrap_or(30).max(1),
            worker_tick_ms: o.worker_tick_ms.unwrap_or(1000).max(10),
            delivery_tick_ms: o.delivery_tick_ms.unwrap_or(100).max(10),
            smtp,
            sar,
            db_max_connections: o.db_max_connections.unwrap_or(16).max(1),
            key_env,
            session_ttl_minutes: o.session_ttl_minutes.unwrap_or(480).max(1),
            auth_cache_ttl_secs: o.auth_cache_ttl_secs.unwrap_or(10),
            jwt,
            audit_key_file,
            secrets_key_file,
            audit_checkpoint_minutes: o.audit_checkpoint_minutes.unwrap_or(60).max(1),
            audit_retention_days,
            outbox_retention_days,
            audit_export_max_events,
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_over_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("casegate-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("casegate.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nrate_limit_per_minute = 5\nrole = \"worker\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "casegate",
            "--config",
            file.to_str().unwrap(),
            "serve",
            "--rate-limit-per-minute",
            "7",
        ]);
        let s = Settings::resolve(cli.options).unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.rate_limit_per_minute, 7);
        assert_eq!(s.role, Role::Worker);
        assert_eq!(s.database_url, "sqlite://./casegate-data/casegate.db");
        assert!(!s.demo);
        std::fs::write(&file, "listne = \"typo\"\n").unwrap();
        assert!(
            Settings::resolve(
                Cli::parse_from(["casegate", "--config", file.to_str().unwrap(), "serve"]).options
            )
            .is_err()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn jwt_needs_issuer_and_audience() {
        let cli = Cli::parse_from([
            "casegate",
            "serve",
            "--jwks-url",
            "https://idp.example/jwks",
        ]);
        assert!(Settings::resolve(cli.options).is_err());
        let cli = Cli::parse_from([
            "casegate",
            "serve",
            "--demo",
            "--jwks-url",
            "https://idp/jwks",
            "--jwt-issuer",
            "i",
            "--jwt-audience",
            "a",
        ]);
        let s = Settings::resolve(cli.options).unwrap();
        assert!(s.demo);
        assert_eq!(s.jwt.unwrap().tenant_claim, "org_id");
    }

    #[test]
    fn outbox_retention_defaults_to_thirty_days_and_refuses_less_than_one() {
        let s = Settings::resolve(Options::default()).unwrap();
        assert_eq!(s.outbox_retention_days, 30);
        let none = Cli::parse_from(["casegate", "serve", "--outbox-retention-days", "0"]);
        let err = Settings::resolve(none.options).unwrap_err().to_string();
        assert!(err.contains("outbox_retention_days"), "{err}");
        let week = Cli::parse_from(["casegate", "serve", "--outbox-retention-days", "7"]);
        assert_eq!(
            Settings::resolve(week.options)
                .unwrap()
                .outbox_retention_days,
            7
        );
    }

    #[test]
    fn audit_retention_defaults_to_seven_years_and_refuses_less_than_five() {
        let s = Settings::resolve(Options::default()).unwrap();
        assert_eq!(s.audit_retention_days, 2557);
        let short = Cli::parse_from(["casegate", "serve", "--audit-retention-days", "1826"]);
        let err = Settings::resolve(short.options).unwrap_err().to_string();
        assert!(err.contains("31 CFR 1010.430"), "{err}");
        let long = Cli::parse_from(["casegate", "serve", "--audit-retention-days", "3650"]);
        assert_eq!(
            Settings::resolve(long.options)
                .unwrap()
                .audit_retention_days,
            3650
        );
    }

    #[test]
    fn smtp_settings_are_checked_and_the_url_never_shown() {
        let with = |url: &str| {
            Settings::resolve(Options {
                smtp_url: Some(Redacted(url.into())),
                ..Options::default()
            })
        };
        let Err(e) = with("gopher://mailer:hunter2@relay") else {
            panic!("a gopher URL is refused")
        };
        assert!(e.to_string().contains("smtp_url"), "{e}");
        assert!(!format!("{e:#}").contains("hunter2"));
        let ok = with("smtp://mailer:hunter2@relay:587?tls=required").expect("valid");
        let smtp = ok.smtp.expect("configured");
        assert_eq!(smtp.from, "casegate@localhost");
        assert!(!format!("{smtp:?}").contains("hunter2"));
        assert!(
            Settings::resolve(Options::default())
                .unwrap()
                .smtp
                .is_none()
        );
    }
}
