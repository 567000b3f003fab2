//! The operations agent: `agent` (the terminal chat) and `agent-eval`.

use super::*;

pub(super) fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Agent { connect, facility, token } => {
            match (connect, facility) {
                (Some(url), _) => {
                    let token = token.context("--token (or TWINFAULT_TOKEN) is required with --connect")?;
                    crate::agent::terminal::run(&url, &token)?;
                }
                (None, Some(f)) => {
                    // A private server on a free loopback port, its store in a temporary folder.
                    let dir = std::env::temp_dir().join(format!("twinfault-agent-{}", std::process::id()));
                    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                    let fac = crate::serve::facility(&f, &crate::serve::ServeConfig::default())?;
                    let token = format!("operator-{}-{}", std::process::id(), crate::clock::now_ms());
                    let cfg = crate::serve::ServeConfig {
                        bind: format!("127.0.0.1:{port}"),
                        store: dir.clone(),
                        simulate: fac.actuators.iter().map(|a| a.id.clone()).collect(),
                        tokens: vec![crate::serve::TokenDef {
                            name: "operator".into(),
                            token: token.clone(),
                            access: crate::serve::Access::Write,
                        }],
                        ..crate::serve::ServeConfig::default()
                    };
                    std::thread::spawn(move || {
                        if let Err(e) = crate::serve::serve(&f, cfg) {
                            eprintln!("error: {e:#}");
                            std::process::exit(2);
                        }
                    });
                    let base = format!("http://127.0.0.1:{port}");
                    let up = (0..200).any(|_| {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    });
                    anyhow::ensure!(up, "the simulated floor did not start");
                    let r = crate::agent::terminal::run(&base, &token);
                    let _ = std::fs::remove_dir_all(&dir);
                    r?;
                }
                (None, None) => anyhow::bail!("--connect or --facility is required"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::AgentEval { scenarios, endpoint, model, json, time_limit, timeout } => {
            let files = if scenarios.is_empty() {
                ["gear_jam", "stiction", "signal_loss", "valve_leak"]
                    .iter()
                    .map(|k| PathBuf::from(format!("scenarios/datacenter_{k}.toml")))
                    .collect()
            } else {
                scenarios
            };
            let loaded: Vec<_> = files.iter().map(|f| crate::load::scenario(f, None)).collect::<Result<_, _>>()?;
            let cfg = crate::agent::chat::AgentConfig {
                base_url: endpoint,
                model,
                time_limit_s: time_limit,
                timeout_s: timeout,
                ..crate::agent::chat::AgentConfig::default()
            };
            let e = crate::agent::eval::evaluate(&loaded, &cfg)?;
            print!("{}", crate::agent::eval::render(&e));
            if let Some(p) = json {
                std::fs::write(&p, serde_json::to_string_pretty(&e)? + "\n")
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => unreachable!("dispatched to {} by cli::dispatch", module_path!()),
    }
}
