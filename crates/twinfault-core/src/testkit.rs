//! Shared by the core's unit tests: the shipped data-centre facility and its templates, compiled
//! in (`include_str!`: the core reads no files), and short scenarios on it.

use crate::config::{Facility, FacilityFile, Templates};
use crate::scenario::Scenario;

const TWINS: [(&str, &str, &str); 4] = [
    ("damper", "damper_actuator.toml", include_str!("../../../twins/damper_actuator.toml")),
    ("valve", "valve_actuator.toml", include_str!("../../../twins/valve_actuator.toml")),
    ("ahu", "ahu.toml", include_str!("../../../twins/ahu.toml")),
    ("plant", "plant.toml", include_str!("../../../twins/plant.toml")),
];

pub const DATACENTER: &str = include_str!("../../../twins/datacenter.toml");

/// `twins/datacenter.toml` with its templates.
pub fn datacenter() -> Facility {
    facility_from(DATACENTER)
}

/// A facility file's text built with the shipped templates.
pub fn facility_from(text: &str) -> Facility {
    let mut templates = Templates::default();
    for (name, file, body) in TWINS {
        templates.add(name, body, file).expect("shipped template parses");
    }
    FacilityFile::parse(text, "datacenter.toml").and_then(|f| f.build(&templates, "datacenter.toml")).expect("builds")
}

/// A scenario on the data centre: always on after a 60 s startup, 5 Hz, `duration_s` long, with
/// extra TOML (injections, expectations) appended.
pub fn scenario(duration_s: u32, extra: &str) -> Scenario {
    let text = format!(
        "name = \"unit\"\nfacility = \"../twins/datacenter.toml\"\nseed = 7\nduration_s = {duration_s}\n\
         sample_rate_hz = 5.0\ncontrol_period_s = 1.0\nstart_clock = \"08:00\"\n\
         [schedule]\nmode = \"always_on\"\nstartup_s = 60\n\
         [weather]\noutdoor_mean_c = 24.0\noutdoor_amplitude_c = 5.0\n{extra}"
    );
    let s = Scenario::parse(&text, "unit.toml").expect("scenario parses");
    s.check_against(&datacenter(), "unit.toml", &text).expect("scenario fits the facility");
    s
}

/// A gear jam on zone damper BEL-VNT-003 at `at_s`.
pub fn gear_jam(at_s: u32) -> String {
    format!("[[inject]]\nid = \"F1\"\nnode = \"BEL-VNT-003\"\nkind = \"gear_jam\"\nseverity = 1.0\nat_s = {at_s}\n")
}
