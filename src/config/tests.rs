use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "stepgate-config-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A crashed run with the same pid may have left it behind.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

/// Resolves with `dir` as the project directory, so the repository's own
/// stepgate.toml is never picked up by accident.
fn resolve_in(
    dir: &TempDir,
    cli: Overrides,
    vars: &[(&str, &str)],
) -> Result<Settings, ConfigError> {
    let cli = Overrides {
        project_dir: Some(dir.0.clone()),
        ..cli
    };
    Settings::resolve(&cli, &env_of(vars))
}

fn error_in(dir: &TempDir, cli: Overrides, vars: &[(&str, &str)]) -> String {
    match resolve_in(dir, cli, vars) {
        Ok(settings) => panic!("expected an error, got {settings:?}"),
        Err(error) => error.to_string(),
    }
}

fn stage(name: &str) -> Overrides {
    Overrides {
        stage: Some(name.to_owned()),
        ..Overrides::default()
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn defaults_without_a_file() {
    let dir = TempDir::new();
    let settings = resolve_in(&dir, Overrides::default(), &[]).unwrap();
    assert_eq!(
        settings,
        Settings {
            project_dir: dir.0.clone(),
            project_dir_origin: Some(format!("--project-dir {}", dir.0.display())),
            config_file: None,
            stack: "orders".into(),
            stage: "dev".into(),
            region: None,
            profile: None,
            profile_origin: None,
            endpoint_url: None,
            account: None,
            role_arn: None,
            external_id: None,
            lambda: LambdaSettings {
                runtime: "nodejs22.x".into(),
                memory_mb: 128,
                timeout_s: 10,
            },
            log_retention_days: 14,
            tags: BTreeMap::new(),
            throttling: None,
            api_log_level: "ERROR".into(),
            rollout: crate::config::Rollout::default(),
        }
    );
}

#[test]
fn a_stages_rollout_replaces_the_defaults_whole_and_bad_values_are_named() {
    let dir = TempDir::new();
    dir.write(
        "stepgate.toml",
        "[defaults.rollout]\nstrategy = \"canary\"\npercent = 20\ninterval = \"2m\"\n\n[stages.prod.rollout]\nstrategy = \"linear\"\npercent = 25\n",
    );
    let dev = resolve_in(&dir, Overrides::default(), &[]).unwrap();
    assert_eq!(dev.rollout.strategy, crate::config::Strategy::Canary);
    assert_eq!(dev.rollout.percent, 20);
    assert_eq!(dev.rollout.interval, std::time::Duration::from_secs(120));
    let prod = resolve_in(
        &dir,
        Overrides {
            stage: Some("prod".into()),
            ..Overrides::default()
        },
        &[],
    )
    .unwrap();
    assert_eq!(prod.rollout.strategy, crate::config::Strategy::Linear);
    assert_eq!(prod.rollout.steps(), [25, 50, 75, 100]);
    assert_eq!(prod.rollout.interval, std::time::Duration::from_secs(300));
    for (text, expected) in [
        (
            "[defaults.rollout]\nstrategy = \"blue-green\"\n",
            "line 2: [defaults.rollout] strategy = \"blue-green\" is not a strategy; use all-at-once, canary or linear",
        ),
        (
            "[stages.prod.rollout]\npercent = 100\n",
            "line 2: [stages.prod.rollout] percent = 100 is out of range; the new version's share of executions is 1 to 99",
        ),
        (
            "[defaults.rollout]\ninterval = \"2h\"\n",
            "line 2: [defaults.rollout] interval = \"2h\" is not a bake time from 1s to 1h; write a duration such as 30s or 5m",
        ),
    ] {
        let path = dir.write("stepgate.toml", text);
        let message = error_in(&dir, Overrides::default(), &[]);
        assert_eq!(message, format!("{} {expected}", path.display()), "{text:?}");
    }
}

#[test]
fn command_line_beats_environment_beats_file_beats_defaults() {
    let dir = TempDir::new();
    dir.write(
        "stepgate.toml",
        r#"
stack = "file-stack"
[defaults]
region = "eu-west-1"
account = "111111111111"
runtime = "nodejs22.x"
memory = 256
timeout = 20
log_retention_days = 30
"#,
    );
    let cli = Overrides {
        region: Some("eu-west-3".into()),
        profile: Some("cli-profile".into()),
        runtime: Some("nodejs24.x".into()),
        memory_mb: Some(1024),
        ..Overrides::default()
    };
    let vars = [
        ("STEPGATE_STACK", "env-stack"),
        ("STEPGATE_REGION", "eu-west-2"),
        ("STEPGATE_PROFILE", "env-profile"),
        ("STEPGATE_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("STEPGATE_ACCOUNT", "222222222222"),
        ("STEPGATE_MEMORY", "512"),
    ];
    let settings = resolve_in(&dir, cli, &vars).unwrap();
    // Command line over environment over file.
    assert_eq!(settings.region.as_deref(), Some("eu-west-3"));
    assert_eq!(settings.lambda.memory_mb, 1024);
    // Command line over file.
    assert_eq!(settings.lambda.runtime, "nodejs24.x");
    // Command line over environment.
    assert_eq!(settings.profile.as_deref(), Some("cli-profile"));
    // Environment over file.
    assert_eq!(settings.stack, "env-stack");
    assert_eq!(settings.account.as_deref(), Some("222222222222"));
    // Environment over default.
    assert_eq!(
        settings.endpoint_url.as_deref(),
        Some("http://127.0.0.1:4566")
    );
    // File over defaults.
    assert_eq!(settings.lambda.timeout_s, 20);
    assert_eq!(settings.log_retention_days, 30);
}

const STAGED: &str = r#"
[defaults]
region = "us-east-1"
memory = 256
timeout = 30
[defaults.tags]
team = "payments"
owner = "alice"
[defaults.throttling]
burst_limit = 100
rate_limit = 50.0

[stages.prod]
region = "eu-west-1"
memory = 1024
[stages.prod.tags]
owner = "bob"
cost-center = "42"
[stages.prod.throttling]
burst_limit = 500
rate_limit = 250
"#;

#[test]
fn the_api_log_level_comes_from_any_layer() {
    let dir = TempDir::new();
    dir.write(
        "stepgate.toml",
        "[defaults]\napi_log_level = \"INFO\"\n[stages.prod]\napi_log_level = \"OFF\"\n",
    );
    let level = |cli, vars: &[(&str, &str)]| resolve_in(&dir, cli, vars).unwrap().api_log_level;
    assert_eq!(level(stage("dev"), &[]), "INFO");
    assert_eq!(level(stage("prod"), &[]), "OFF");
    assert_eq!(
        level(stage("prod"), &[("STEPGATE_API_LOG_LEVEL", "ERROR")]),
        "ERROR"
    );
    let cli = Overrides {
        api_log_level: Some("INFO".into()),
        ..stage("prod")
    };
    assert_eq!(level(cli, &[("STEPGATE_API_LOG_LEVEL", "ERROR")]), "INFO");
    // A bad variable is refused even where the flag wins.
    let cli = Overrides {
        api_log_level: Some("INFO".into()),
        ..stage("prod")
    };
    assert_eq!(
        error_in(&dir, cli, &[("STEPGATE_API_LOG_LEVEL", "loud")]),
        "STEPGATE_API_LOG_LEVEL=loud is not an API Gateway execution-logging level; use OFF, ERROR or INFO"
    );
}

#[test]
fn stage_section_overrides_defaults_and_merges_tags() {
    let dir = TempDir::new();
    dir.write("stepgate.toml", STAGED);

    let prod = resolve_in(&dir, Overrides::default(), &[("STEPGATE_STAGE", "prod")]).unwrap();
    assert_eq!(prod.stage, "prod");
    assert_eq!(prod.region.as_deref(), Some("eu-west-1"));
    assert_eq!(prod.lambda.memory_mb, 1024);
    assert_eq!(
        prod.lambda.timeout_s, 30,
        "not in [stages.prod]: from [defaults]"
    );
    assert_eq!(
        prod.tags,
        tags(&[
            ("team", "payments"),
            ("owner", "bob"),
            ("cost-center", "42")
        ])
    );
    assert_eq!(
        prod.throttling,
        Some(Throttling {
            burst_limit: 500,
            rate_limit: 250.0
        })
    );

    // A stage without a section gets [defaults]; --stage beats STEPGATE_STAGE.
    let dev = resolve_in(&dir, stage("dev"), &[("STEPGATE_STAGE", "prod")]).unwrap();
    assert_eq!(dev.stage, "dev");
    assert_eq!(dev.region.as_deref(), Some("us-east-1"));
    assert_eq!(dev.lambda.memory_mb, 256);
    assert_eq!(dev.tags, tags(&[("team", "payments"), ("owner", "alice")]));
    assert_eq!(
        dev.throttling,
        Some(Throttling {
            burst_limit: 100,
            rate_limit: 50.0
        })
    );
}

#[test]
fn the_profile_comes_from_any_layer_and_knows_where() {
    let dir = TempDir::new();
    let path = dir.write(
        "stepgate.toml",
        "[defaults]\nprofile = \"dev-account\"\n[stages.prod]\nprofile = \"prod-account\"\n",
    );
    let shown = path.display();
    for (cli, vars, profile, origin) in [
        (
            stage("dev"),
            &[][..],
            "dev-account",
            format!("{shown} line 2: profile = \"dev-account\""),
        ),
        (
            stage("prod"),
            &[],
            "prod-account",
            format!("{shown} line 4: profile = \"prod-account\""),
        ),
        (
            stage("prod"),
            &[("STEPGATE_PROFILE", "ops")],
            "ops",
            "STEPGATE_PROFILE=ops".to_string(),
        ),
        (
            Overrides {
                profile: Some("mine".into()),
                ..stage("prod")
            },
            &[("STEPGATE_PROFILE", "ops")],
            "mine",
            "--profile \"mine\"".to_string(),
        ),
    ] {
        let settings = resolve_in(&dir, cli, vars).unwrap();
        assert_eq!(settings.profile.as_deref(), Some(profile));
        assert_eq!(settings.profile_origin, Some(origin));
    }
    dir.write("stepgate.toml", "[stages.qa]\nprofile = \"\"\n");
    assert!(error_in(&dir, Overrides::default(), &[]).ends_with(
        "line 2: profile = \"\" is empty: name a profile from the AWS config or credentials file"
    ));
}

#[test]
fn unknown_key_names_file_line_and_table() {
    let dir = TempDir::new();
    let path = dir.write(
        "stepgate.toml",
        "stack = \"orders\"\n\n[defaults]\nmemory = 128\n\n[stages.prod]\nmemroy = 256\n",
    );
    let error = resolve_in(&dir, Overrides::default(), &[]).unwrap_err();
    assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "{} line 7: unknown key `memroy` in [stages.prod]; expected one of: \
             region, account, role_arn, external_id, runtime, memory, timeout, log_retention_days, tags, throttling, rollout, profile, api_log_level, functions, state_machines, roles",
            path.display()
        )
    );

    // The table is found however the file spells it.
    for (text, expected) in [
        (
            "\nstak = \"orders\"\n",
            "line 2: unknown key `stak` at the top level; expected one of: stack, defaults, stages",
        ),
        (
            "[stages]\nqa = { timeout = 5, burst = 1 }\n",
            "line 2: unknown key `burst` in [stages.qa]; expected one of: region,",
        ),
        (
            "[defaults]\nthrottling.burst_limit = 1\nthrottling.rate_limit = 2\nthrottling.rate = 3\n",
            "line 4: unknown key `rate` in [defaults.throttling]; expected one of: burst_limit, rate_limit",
        ),
    ] {
        let path = dir.write("stepgate.toml", text);
        let message = error_in(&dir, Overrides::default(), &[]);
        assert!(
            message.starts_with(&format!("{} {expected}", path.display())),
            "{text:?} gave {message}"
        );
    }
}

#[test]
fn out_of_range_file_value_names_file_and_line() {
    let dir = TempDir::new();
    let path = dir.write(
        "stepgate.toml",
        "[defaults]\nmemory = 128\n\n[defaults.tags]\nteam = \"payments\"\n\n\
         [stages.prod]\nregion = \"eu-west-1\"\nmemory = 64\n",
    );
    // The whole file is checked, not only the stage being run (dev here).
    assert_eq!(
        error_in(&dir, Overrides::default(), &[]),
        format!(
            "{} line 9: memory = 64 is out of range; Lambda memory must be 128..=10240 MB",
            path.display()
        )
    );
    // The command line overriding the value does not hide the mistake.
    let cli = Overrides {
        memory_mb: Some(256),
        ..Overrides::default()
    };
    assert!(error_in(&dir, cli, &[]).contains("line 9: memory = 64"));
}

#[test]
fn malformed_file_gives_one_line_with_its_line_number() {
    let dir = TempDir::new();
    for (text, expected) in [
        (
            "[defaults]\ntimeout = \"ten\"\n",
            "line 2: defaults.timeout: invalid type: string \"ten\", expected a whole number",
        ),
        (
            "[defaults]\nthrottling = { burst_limit = 1 }\n",
            "line 2: defaults.throttling: missing field `rate_limit`",
        ),
        ("[defaults]\n\n[stages.prod\n", "line 3: "),
        (
            "[defaults.throttling]\nburst_limit = 10\n",
            "line 1: missing field `rate_limit`",
        ),
        (
            "[stages.\"my stage\"]\nmemory = 256\n",
            "line 1: [stages.\"my stage\"] is not valid: use letters, digits, '-' or '_'",
        ),
    ] {
        let path = dir.write("stepgate.toml", text);
        let message = error_in(&dir, Overrides::default(), &[]);
        assert!(
            message.starts_with(&format!("{} {expected}", path.display())),
            "{text:?} gave {message}"
        );
        assert!(!message.contains('\n'), "{text:?} gave {message}");
    }
}

#[test]
fn bad_environment_values_name_the_variable() {
    let dir = TempDir::new();
    for (var, value, expected) in [
        ("STEPGATE_MEMORY", "abc", "STEPGATE_MEMORY=abc is not a whole number"),
        (
            "STEPGATE_MEMORY",
            "64",
            "STEPGATE_MEMORY=64 is out of range; Lambda memory must be 128..=10240 MB",
        ),
        (
            "STEPGATE_TIMEOUT",
            "99999999999",
            "STEPGATE_TIMEOUT=99999999999 is out of range; a Lambda timeout must be 1..=900 seconds",
        ),
        (
            "STEPGATE_ACCOUNT",
            "1234",
            "STEPGATE_ACCOUNT=1234 is not an AWS account ID: it must be exactly 12 digits",
        ),
    ] {
        assert_eq!(
            error_in(&dir, Overrides::default(), &[(var, value)]),
            expected
        );
    }
    // Checked even where the command line wins.
    let cli = Overrides {
        region: Some("us-east-1".into()),
        ..Overrides::default()
    };
    assert!(error_in(&dir, cli, &[("STEPGATE_REGION", "Ireland")])
        .starts_with("STEPGATE_REGION=Ireland is not an AWS region"));
}

#[test]
fn empty_environment_values_count_as_unset() {
    let dir = TempDir::new();
    let vars = [
        ("STEPGATE_STAGE", ""),
        ("STEPGATE_MEMORY", ""),
        ("STEPGATE_CONFIG", ""),
    ];
    let settings = resolve_in(&dir, Overrides::default(), &vars).unwrap();
    assert_eq!(settings.stage, "dev");
    assert_eq!(settings.lambda.memory_mb, 128);
    assert_eq!(settings.config_file, None);
}

#[test]
fn bad_stage_name_is_rejected() {
    let dir = TempDir::new();
    assert_eq!(
        error_in(&dir, stage("my stage"), &[]),
        "--stage \"my stage\" is not valid: use letters, digits, '-' or '_' (at most 32 characters)"
    );
    assert!(resolve_in(&dir, stage(&"s".repeat(32)), &[]).is_ok());
    assert!(resolve_in(&dir, stage(&"s".repeat(33)), &[]).is_err());
    assert!(
        error_in(&dir, Overrides::default(), &[("STEPGATE_STAGE", "a.b")])
            .starts_with("STEPGATE_STAGE=a.b is not valid")
    );
}

#[test]
fn explicitly_named_config_must_exist() {
    let dir = TempDir::new();
    let missing = dir.0.join("nope.toml");
    let cli = Overrides {
        config: Some(missing.clone()),
        ..Overrides::default()
    };
    let error = resolve_in(&dir, cli, &[]).unwrap_err();
    assert!(matches!(error, ConfigError::NotFound { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("--config {}: file not found", missing.display())
    );

    let var = missing.to_str().unwrap();
    assert_eq!(
        error_in(&dir, Overrides::default(), &[("STEPGATE_CONFIG", var)]),
        format!("STEPGATE_CONFIG={var}: file not found")
    );

    let cli = Overrides {
        project_dir: Some(missing.clone()),
        ..Overrides::default()
    };
    assert_eq!(
        Settings::resolve(&cli, &env_of(&[]))
            .unwrap_err()
            .to_string(),
        format!("--project-dir {}: directory not found", missing.display())
    );
}

#[test]
fn default_file_is_read_from_the_project_dir() {
    let dir = TempDir::new();
    let default_file = dir.write("stepgate.toml", "stack = \"shop\"\n");
    let settings = resolve_in(&dir, Overrides::default(), &[]).unwrap();
    assert_eq!(settings.stack, "shop");
    assert_eq!(settings.config_file, Some(default_file));

    // A config named explicitly replaces it.
    let other = dir.write("other.toml", "stack = \"market\"\n");
    let cli = Overrides {
        config: Some(other.clone()),
        ..Overrides::default()
    };
    let settings = resolve_in(&dir, cli, &[]).unwrap();
    assert_eq!(settings.stack, "market");
    assert_eq!(settings.config_file, Some(other));
}

#[test]
fn values_outside_the_rules_are_rejected() {
    let dir = TempDir::new();
    let stack = |v: &str| Overrides {
        stack: Some(v.into()),
        ..Default::default()
    };
    let region = |v: &str| Overrides {
        region: Some(v.into()),
        ..Default::default()
    };
    let profile = |v: &str| Overrides {
        profile: Some(v.into()),
        ..Default::default()
    };
    let endpoint = |v: &str| Overrides {
        endpoint_url: Some(v.into()),
        ..Default::default()
    };
    let account = |v: &str| Overrides {
        account: Some(v.into()),
        ..Default::default()
    };
    let runtime = |v: &str| Overrides {
        runtime: Some(v.into()),
        ..Default::default()
    };
    let memory = |v| Overrides {
        memory_mb: Some(v),
        ..Default::default()
    };
    let timeout = |v| Overrides {
        timeout_s: Some(v),
        ..Default::default()
    };
    let retention = |v| Overrides {
        log_retention_days: Some(v),
        ..Default::default()
    };
    let log_level = |v: &str| Overrides {
        api_log_level: Some(v.into()),
        ..Default::default()
    };
    let cases = [
        (stack("a-1"), true),
        (stack(&"a".repeat(24)), true),
        (stack(&"a".repeat(25)), false),
        (stack("1abc"), false),
        (stack("my_stack"), false),
        (region("us-gov-west-1"), true),
        (region("cn-north-1"), true),
        (region("eu-central-2"), true),
        (region("us-east"), false),
        (region("US-EAST-1"), false),
        (region("us--1"), false),
        (profile("work"), true),
        (profile(""), false),
        (endpoint("https://x.example"), true),
        (endpoint("localhost:4566"), false),
        (endpoint("http://"), false),
        (account("012345678901"), true),
        (account("12345678901"), false),
        (account("12345678901a"), false),
        (runtime("nodejs22.x"), true),
        (runtime("nodejs24.x"), true),
        (runtime("nodejs20.x"), false),
        (runtime("nodejs14.x"), false),
        (runtime("nodejs999.x"), false),
        (runtime("python3.12"), false),
        (runtime("nodejs.x"), false),
        (runtime("nodejs22"), false),
        (memory(128), true),
        (memory(10240), true),
        (memory(127), false),
        (memory(10241), false),
        (timeout(1), true),
        (timeout(900), true),
        (timeout(0), false),
        (timeout(901), false),
        (retention(3653), true),
        (retention(2), false),
        (log_level("OFF"), true),
        (log_level("ERROR"), true),
        (log_level("INFO"), true),
        (log_level("info"), false),
        (log_level("DEBUG"), false),
        (log_level(""), false),
    ];
    for (cli, valid) in cases {
        let result = resolve_in(&dir, cli.clone(), &[]);
        assert_eq!(result.is_ok(), valid, "{cli:?} gave {result:?}");
    }
    assert_eq!(
        error_in(&dir, log_level("DEBUG"), &[]),
        "--api-log-level \"DEBUG\" is not an API Gateway execution-logging level; use OFF, ERROR or INFO"
    );
    let message = error_in(&dir, retention(2), &[]);
    let allowed: Vec<String> = LOG_RETENTION_DAYS.iter().map(i32::to_string).collect();
    assert!(message.ends_with(&allowed.join(", ")), "{message}");
}

#[test]
fn file_tags_and_throttling_are_checked() {
    let dir = TempDir::new();
    let many: String = (0..30).map(|i| format!("t{i} = \"x\"\n")).collect();
    let more: String = (30..41).map(|i| format!("t{i} = \"x\"\n")).collect();
    for (text, expected) in [
        (
            "[defaults.tags]\n\"aws:owner\" = \"me\"\n".to_owned(),
            "line 2: tag \"aws:owner\" is reserved: tag keys may not start with \"aws:\" or \"stepgate:\"",
        ),
        (
            "[stages.prod.tags]\n\"Stepgate:stack\" = \"x\"\n".to_owned(),
            "line 2: tag \"Stepgate:stack\" is reserved",
        ),
        (
            "[defaults.tags]\n\"cost#center\" = \"42\"\n".to_owned(),
            "line 2: tag \"cost#center\" has a character AWS does not allow in tag keys ('#')",
        ),
        (
            "[stages.prod.tags]\nteam = \"a|b\"\n".to_owned(),
            "line 2: tag \"team\" has a character AWS does not allow in tag values ('|')",
        ),
        (
            format!("[defaults.tags]\nnote = \"{}\"\n", "x".repeat(257)),
            "line 2: tag \"note\" has a value of 257 characters; tag values may have at most 256",
        ),
        (
            format!("[defaults.tags]\n{many}\n[stages.prod.tags]\n{more}"),
            "line 34: [stages.prod.tags] brings the stage to 41 tags; at most 40 extra tags are allowed",
        ),
        (
            "[defaults.throttling]\nburst_limit = -1\nrate_limit = 1.0\n".to_owned(),
            "line 2: burst_limit = -1 is negative; burst_limit must be 0 or more",
        ),
        (
            "[stages.prod.throttling]\nburst_limit = 1\nrate_limit = inf\n".to_owned(),
            "line 3: rate_limit = inf is not allowed",
        ),
        (
            "[defaults]\nregion = \"us-east-1\"\n[stages.prod]\napi_log_level = \"VERBOSE\"\n".to_owned(),
            "line 4: api_log_level = \"VERBOSE\" is not an API Gateway execution-logging level; use OFF, ERROR or INFO",
        ),
    ] {
        let path = dir.write("stepgate.toml", &text);
        let message = error_in(&dir, Overrides::default(), &[]);
        assert!(
            message.starts_with(&format!("{} {expected}", path.display())),
            "{expected:?} gave {message}"
        );
    }
    // Exactly at the limit is fine, and a tag may be 256 characters long.
    let text = format!(
        "[defaults.tags]\n{many}\n[stages.prod.tags]\n{}\nlong = \"{}\"\n",
        (30..39)
            .map(|i| format!("t{i} = \"x\"\n"))
            .collect::<String>(),
        "x".repeat(256)
    );
    dir.write("stepgate.toml", &text);
    assert_eq!(resolve_in(&dir, stage("prod"), &[]).unwrap().tags.len(), 40);
}

/// The example at the repository root must describe the tutorial stack's
/// defaults exactly, and its commented-out settings must stay valid.
#[test]
fn repository_example_matches_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("stepgate.toml");
    let dir = TempDir::new();
    for name in ["dev", "prod"] {
        let without = resolve_in(&dir, stage(name), &[]).unwrap();
        let cli = Overrides {
            config: Some(example.clone()),
            ..stage(name)
        };
        let mut with = resolve_in(&dir, cli, &[]).unwrap();
        assert_eq!(with.config_file.as_deref(), Some(example.as_path()));
        with.config_file = None;
        assert_eq!(with, without, "stage {name}");
    }

    // Settings are commented out as "# key = value" or "# [table]".
    let text = std::fs::read_to_string(&example).unwrap();
    let mut uncommented_lines = 0;
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[')
                    || rest
                        .split_once(" = ")
                        .is_some_and(|(key, _)| toml_key(key) == key) =>
            {
                uncommented_lines += 1;
                format!("{rest}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    assert!(uncommented_lines >= 10, "{uncommented}");
    let cli = Overrides {
        config: Some(dir.write("uncommented.toml", &uncommented)),
        ..stage("prod")
    };
    let prod = resolve_in(&dir, cli, &[]).unwrap();
    assert_eq!(prod.region.as_deref(), Some("eu-west-1"));
    assert_eq!(prod.lambda.memory_mb, 256);
}

#[test]
fn a_role_per_stage_comes_from_the_file_and_the_flag_wins() {
    let dir = TempDir::new();
    dir.write(
        "stepgate.toml",
        "[stages.prod]\nrole_arn = \"arn:aws:iam::222222222222:role/deployer\"\nexternal_id = \"pipeline-7\"\n",
    );
    let prod = resolve_in(&dir, stage("prod"), &[]).unwrap();
    assert_eq!(
        prod.role_arn.as_deref(),
        Some("arn:aws:iam::222222222222:role/deployer")
    );
    assert_eq!(prod.external_id.as_deref(), Some("pipeline-7"));
    assert_eq!(resolve_in(&dir, stage("dev"), &[]).unwrap().role_arn, None);

    let cli = Overrides {
        role_arn: Some("arn:aws:iam::333333333333:role/ci/deployer".into()),
        ..stage("prod")
    };
    let settings = resolve_in(&dir, cli, &[]).unwrap();
    assert_eq!(
        settings.role_arn.as_deref(),
        Some("arn:aws:iam::333333333333:role/ci/deployer")
    );
}

#[test]
fn bad_roles_are_refused_before_any_aws_call() {
    let dir = TempDir::new();
    for (cli, vars, expected) in [
        (
            Overrides {
                role_arn: Some("deployer".into()),
                ..Overrides::default()
            },
            Vec::<(&str, &str)>::new(),
            "--role-arn \"deployer\" is not an IAM role ARN: expected arn:aws:iam::123456789012:role/NAME (the role stepgate assumes to deploy)",
        ),
        (
            Overrides::default(),
            vec![("STEPGATE_ROLE_ARN", "arn:aws:iam::12345:role/deployer")],
            "STEPGATE_ROLE_ARN=arn:aws:iam::12345:role/deployer is not an IAM role ARN: expected arn:aws:iam::123456789012:role/NAME (the role stepgate assumes to deploy)",
        ),
        (
            Overrides {
                role_arn: Some("arn:aws:iam::111111111111:user/deployer".into()),
                ..Overrides::default()
            },
            vec![],
            "--role-arn \"arn:aws:iam::111111111111:user/deployer\" is not an IAM role ARN: expected arn:aws:iam::123456789012:role/NAME (the role stepgate assumes to deploy)",
        ),
        (
            Overrides {
                external_id: Some("x".into()),
                role_arn: Some("arn:aws:iam::111111111111:role/deployer".into()),
                ..Overrides::default()
            },
            vec![],
            "--external-id \"x\" is not an external ID STS accepts: 2 to 1224 characters of letters, digits and + = , . @ : / _ -",
        ),
        (
            Overrides {
                external_id: Some("pipeline-7".into()),
                ..Overrides::default()
            },
            vec![],
            "--external-id \"pipeline-7\" is given without a role to assume; add --role-arn (or role_arn in stepgate.toml), or drop the external ID",
        ),
        (
            Overrides {
                role_arn: Some("arn:aws:iam::111111111111:role/deployer".into()),
                ..Overrides::default()
            },
            vec![("STEPGATE_ACCOUNT", "222222222222")],
            "--role-arn \"arn:aws:iam::111111111111:role/deployer\" is a role in account 111111111111, but STEPGATE_ACCOUNT=222222222222 pins the run to account 222222222222; assume a role in 222222222222, or change the account",
        ),
    ] {
        assert_eq!(error_in(&dir, cli, &vars), expected);
    }
}

#[test]
fn role_arns_are_read_as_iam_writes_them() {
    for (arn, account) in [
        (
            "arn:aws:iam::123456789012:role/deployer",
            Some("123456789012"),
        ),
        (
            "arn:aws-cn:iam::123456789012:role/ci/deploy+er",
            Some("123456789012"),
        ),
        (
            "arn:aws-us-gov:iam::123456789012:role/a.b@c=d,e_f-g",
            Some("123456789012"),
        ),
        ("arn:aws:iam::123456789012:role/", None),
        ("arn:aws:iam::123456789012:role/has space", None),
        ("arn:aws:sts::123456789012:assumed-role/deployer/s", None),
        ("arn:aws:iam:us-east-1:123456789012:role/deployer", None),
    ] {
        assert_eq!(super::role_arn_account(arn), account, "{arn}");
    }
    let long = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65));
    assert_eq!(super::role_arn_account(&long), None);
}
