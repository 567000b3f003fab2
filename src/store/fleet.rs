//! A fleet's acknowledged cycles (`fleet_cycles`): one entry per member and cycle, written as a
//! batch and flushed before the cycles are acknowledged, read back in (member, cycle) order when
//! the fleet server starts.

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub struct FleetCycles {
    tree: sled::Tree,
}

/// Member index (u16) then cycle (u32), big-endian: the tree's order is each member's cycle order.
fn key(member: usize, cycle: u32) -> [u8; 6] {
    let mut k = [0u8; 6];
    k[..2].copy_from_slice(&(member as u16).to_be_bytes());
    k[2..].copy_from_slice(&cycle.to_be_bytes());
    k
}

impl FleetCycles {
    pub(super) fn open(db: &sled::Db) -> Result<FleetCycles> {
        Ok(FleetCycles { tree: db.open_tree("fleet_cycles").context("cannot open the fleet's cycles")? })
    }

    /// Stores `(member, cycle, value)` items as one batch and flushes it to disk.
    pub fn put<T: Serialize>(&self, items: &[(usize, u32, &T)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (member, cycle, v) in items {
            anyhow::ensure!(*member <= usize::from(u16::MAX), "member index {member} is over 65,535");
            batch.insert(&key(*member, *cycle), serde_json::to_vec(v)?);
        }
        self.tree.apply_batch(batch).context("the store failed")?;
        self.tree.flush().context("the store failed")?;
        Ok(())
    }

    /// Every stored cycle as (member, value), in (member, cycle) order.
    pub fn all<T: DeserializeOwned>(&self) -> Result<Vec<(usize, T)>> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv.context("reading the stored cycles")?;
                let member = usize::from(u16::from_be_bytes([k[0], k[1]]));
                Ok((member, serde_json::from_slice(&v).context("a stored cycle is damaged")?))
            })
            .collect()
    }
}
