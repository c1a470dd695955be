//! `bringup graph`: the phase dependency graph as Mermaid or DOT.

use super::args::GraphFormat;
use super::session::{Failure, Session};
use crate::phase::graph;

pub fn print(session: &Session, format: GraphFormat) -> Result<(), Failure> {
    let phases = session.load()?;
    let text = match format {
        GraphFormat::Mermaid => graph::mermaid(&phases),
        GraphFormat::Dot => graph::dot(&phases),
    };
    print!("{text}");
    Ok(())
}
