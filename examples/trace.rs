//! Prints an AHU's temperatures and its children's feedback/output positions every N seconds of
//! a scenario, using the plain loop: a quick look at what the models do.
//!
//!     cargo run --example trace -- scenarios/datacenter_gear_jam.toml ahu-01 300

use std::path::PathBuf;
use twinfault_core::plain::Run;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 3, "usage: trace SCENARIO AHU [EVERY_S]");
    let l = twinfault::load::scenario(&PathBuf::from(&args[1]), None)?;
    let h = l
        .facility
        .ahus
        .iter()
        .position(|a| a.id == args[2])
        .ok_or_else(|| anyhow::anyhow!("unknown AHU {}", args[2]))?;
    let every: u64 = args.get(3).map_or(Ok(600), |s| s.parse())?;
    let facility = std::sync::Arc::new(l.facility.clone());
    let mut run = Run::new(&l.scenario, facility, false);
    let grid = run.setup.grid;
    let ids: Vec<&str> = l.facility.ahus[h].children.iter().map(|&i| l.facility.actuators[i].id.as_str()).collect();
    println!("t_s phase oa ra ma sa cooling_kw | feedback/output per child: {}", ids.join(" "));
    while let Some((e, out)) = run.advance() {
        let t = grid.epoch_start(e).as_secs_f64() as u64;
        if t.is_multiple_of(every) {
            let s = &out.ahu_summaries[h];
            let pos: Vec<String> = l.facility.ahus[h]
                .children
                .iter()
                .map(|&i| {
                    format!("{:.1}/{:.1}", out.actuators[i].report.feedback_pct, out.actuators[i].report.opening_pct)
                })
                .collect();
            println!(
                "{t:>6} {:?} {:.1} {:.1} {:.1} {:.2} {:.1} | {}",
                s.phase,
                s.outdoor_air_c,
                s.return_air_c,
                s.mixed_air_c,
                s.supply_air_c,
                s.cooling_kw,
                pos.join(" ")
            );
        }
    }
    Ok(())
}
