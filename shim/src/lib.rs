//! The contract between husk's runner and its shim: the plan the runner
//! writes and the report the shim sends back. no_std, allocation-free on the
//! decoding side.
#![cfg_attr(not(test), no_std)]

pub mod plan;
pub mod report;
