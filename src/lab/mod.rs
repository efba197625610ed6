//! The local container lab (see TESTBED.md).
