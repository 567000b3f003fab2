//! The drawable view of a facility: its tree and map geometry without the device models. What a
//! visualizer needs, whether the twins run in-process or behind `twinfault serve`
//! (`GET /api/facility`).

use crate::config::{Facility, NodeRef, ZoneDef};
use crate::twin::Mode;
use crate::types::Role;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Map width and height [map units].
    pub map_size: [f64; 2],
    pub zones: Vec<ZoneDef>,
    pub plant: Option<PlaceNode>,
    pub ahus: Vec<AhuPlace>,
    pub actuators: Vec<ActuatorPlace>,
}

/// A plant on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceNode {
    pub id: String,
    pub position: [f64; 2],
    #[serde(default)]
    pub description: String,
}

/// An AHU on the map with its children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AhuPlace {
    pub id: String,
    pub position: [f64; 2],
    #[serde(default)]
    pub description: String,
    /// Indices into [`Layout::actuators`], in file order.
    pub children: Vec<usize>,
}

/// An actuator on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActuatorPlace {
    pub id: String,
    /// Index into [`Layout::ahus`].
    pub ahu: usize,
    pub role: Role,
    /// Index into [`Layout::zones`].
    pub zone: Option<usize>,
    pub position: [f64; 2],
    pub model: String,
    pub mode: Mode,
}

impl Facility {
    /// The facility's tree and geometry.
    pub fn layout(&self) -> Layout {
        Layout {
            name: self.name.clone(),
            description: self.description.clone(),
            map_size: self.map_size,
            zones: self.zones.clone(),
            plant: self.plant.as_ref().map(|p| PlaceNode {
                id: p.id.clone(),
                position: p.position,
                description: p.description.clone(),
            }),
            ahus: self
                .ahus
                .iter()
                .map(|a| AhuPlace {
                    id: a.id.clone(),
                    position: a.position,
                    description: a.description.clone(),
                    children: a.children.clone(),
                })
                .collect(),
            actuators: self
                .actuators
                .iter()
                .map(|a| ActuatorPlace {
                    id: a.id.clone(),
                    ahu: a.ahu,
                    role: a.role,
                    zone: a.zone,
                    position: a.position,
                    model: a.model.clone(),
                    mode: a.mode,
                })
                .collect(),
        }
    }
}

impl crate::fault::InjectionTarget for Layout {
    fn role_and_mode(&self, id: &str) -> Option<(Role, Mode)> {
        match self.node(id)? {
            NodeRef::Actuator(i) => Some((self.actuators[i].role, self.actuators[i].mode)),
            _ => None,
        }
    }
}

impl Layout {
    /// Finds a node by id.
    pub fn node(&self, id: &str) -> Option<NodeRef> {
        crate::config::find_node(
            id,
            self.plant.as_ref().map(|p| p.id.as_str()),
            self.ahus.iter().map(|a| a.id.as_str()),
            self.actuators.iter().map(|a| a.id.as_str()),
        )
    }

    /// Every node id: plant, AHUs, actuators.
    pub fn node_ids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.plant.iter().map(|p| p.id.as_str()).collect();
        v.extend(self.ahus.iter().map(|a| a.id.as_str()));
        v.extend(self.actuators.iter().map(|a| a.id.as_str()));
        v
    }

    /// Checks what a server sent: every index points at something that exists.
    pub fn check(&self) -> Result<(), String> {
        for (h, a) in self.ahus.iter().enumerate() {
            if let Some(&c) = a.children.iter().find(|&&c| c >= self.actuators.len()) {
                return Err(format!(
                    "ahus[{h}] ({}) names child {c}, beyond the {} actuators",
                    a.id,
                    self.actuators.len()
                ));
            }
        }
        for (i, a) in self.actuators.iter().enumerate() {
            if a.ahu >= self.ahus.len() {
                return Err(format!(
                    "actuators[{i}] ({}) names AHU {}, beyond the {} AHUs",
                    a.id,
                    a.ahu,
                    self.ahus.len()
                ));
            }
            if a.zone.is_some_and(|z| z >= self.zones.len()) {
                return Err(format!("actuators[{i}] ({}) names a zone beyond the {} zones", a.id, self.zones.len()));
            }
        }
        Ok(())
    }
}
