//! Phase files: the YAML model, loading with positions, validation, the DAG, templating.
//!
//! The entry points: [`Values::load`] merges values, [`load_dir`] loads, validates and orders
//! a phases directory (or returns every problem as [`Diagnostics`]), [`Templater`] renders
//! templates, [`graph`] draws the DAG.

pub mod dag;
pub mod diagnostic;
pub mod graph;
pub mod load;
pub mod model;
pub mod producers;
pub mod suggest;
pub mod template;
pub mod validate;
pub mod values;

pub use dag::{DagError, PhaseSet};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use load::{load_dir, load_sources};
pub use template::{Locals, TemplateError, Templater};
pub use values::{Values, ValuesError};
