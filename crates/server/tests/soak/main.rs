//! Faults and load (issue 10 section 2): each scenario runs in a short form here, under
//! `cargo test` and so `cargo xtask test` (a few seconds each), and in a long form with
//! `SOAK_LONG=1` (`cargo xtask soak`, release build). The scenarios measure the process's own
//! memory, file descriptors and tasks, so they run one at a time (`harness::serial`).
//! Figures of the long form: docs/RELIABILITY.md.

#[path = "../common/mod.rs"]
mod common;

mod churn;
mod half_open;
mod harness;
mod slow_consumer;
mod upgrade;
