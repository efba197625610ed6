//! Stage 1: load YAML documents with source spans and check them.

pub mod yaml;
