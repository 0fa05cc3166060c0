//! What the test binaries of this directory share.

pub mod soak_server;
