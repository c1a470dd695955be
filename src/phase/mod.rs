//! Phase files: the YAML model, loading with positions, validation, the DAG, templating.

pub mod model;
pub mod template;
