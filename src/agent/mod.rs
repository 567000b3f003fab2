//! The operations agent: a [`chat`] with any OpenAI-compatible model over the twin's tools; every
//! change goes through one approval [`policy`] and every call, read or change, lands in the
//! [`audit`] log in the sled store; [`terminal`] is the operator's chat with a running server;
//! [`double`] is a scripted stand-in for a model, for tests.

pub mod chat;
pub mod double;
pub mod eval;
pub mod ground;
pub mod policy;
pub mod terminal;
pub mod tools;
