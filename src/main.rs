use std::path::PathBuf;
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let l = twinfault::load::scenario(&PathBuf::from(&args[1]), None)?;
    eprintln!("dur {:?} sched {:?}", l.scenario.duration, l.scenario.schedule);
    let log = twinfault_core::plain::run_plain(&l.scenario, &l.facility);
    eprintln!("log {}", log.len());
    for e in &log {
        println!("{}", serde_json::to_string(e)?);
    }
    let r = twinfault_core::report::build(&l.scenario, &log, "");
    eprintln!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
