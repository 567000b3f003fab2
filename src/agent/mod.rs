//! The operations agent's foundation: every change goes through one approval [`policy`] and every
//! call, read or change, lands in the [`audit`] log in the sled store. (The LLM conversation that
//! proposes changes through them is the next piece; see the issue notes.)

pub mod audit;
pub mod chat;
pub mod policy;
