use std::path::PathBuf;
use twinfault_core::plain::*;
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let l = twinfault::load::scenario(&PathBuf::from(&args[1]), None)?;
    let every: u64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(600);
    let mut setup = Setup::new(&l.scenario, &l.facility, false);
    let grid = setup.grid;
    let mut cond = setup.plant.as_ref().unwrap().conditions();
    for e in 0..grid.epochs_in(l.scenario.duration) {
        let out = step_epoch(&mut setup, &l.facility, e, &mut cond);
        let t = grid.epoch_start(e).as_secs_f64();
        if (t as u64) % every == 0 {
            let s = &out.ahu_summaries[0];
            let pos: Vec<String> = l.facility.ahus[0].children.iter().map(|&i| format!("{:.1}/{:.1}", out.actuators[i].report.feedback_pct, out.actuators[i].report.opening_pct)).collect();
            println!("{:>6} {:?} oa {:.1} ra {:.1} ma {:.1} sa {:.2} cool {:.1}kW | {}", t, s.phase, s.outdoor_air_c, s.return_air_c, s.mixed_air_c, s.supply_air_c, s.cooling_kw, pos.join(" "));
        }
    }
    Ok(())
}
