//! End-to-end tests of the embedded backend over real gRPC, with a fake Python runtime.

mod actions;
mod common;
mod execution;
mod forked;
mod protocol;
mod recovery;
mod runs;
mod tasks;
mod triggers;
mod waits;
