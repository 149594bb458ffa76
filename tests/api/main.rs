//! Integration tests of erpd: the real binary, started as a child process on a temporary
//! data directory, driven over HTTP on 127.0.0.1 and through its command line.
//!
//! Each test starts its own server, so tests are independent and run in parallel.

mod access_matrix;
mod accounting;
mod audit;
mod backup;
mod demo;
mod fixtures;
mod fleet;
mod helpers;
mod identity;
mod invariants;
mod invoice_pdf;
mod master_data;
mod operations;
mod platform;
mod process;
mod sales;
mod storage;
mod tenant_api;
