//! An error and its causes on one line (`a: b: c`), each cause once: what a person needs to
//! act on a failure that a library wrapped several times (a TLS failure inside a connect
//! error inside a client error).

/// `error: cause: cause`, leaving out a cause whose text the line already holds.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn every_cause_once() {
        let inner = Layer("invalid peer certificate: UnknownIssuer", None);
        let middle = Layer("client error (Connect)", Some(Box::new(inner)));
        let outer = Layer("reading the cluster identity", Some(Box::new(middle)));
        assert_eq!(
            error_chain(&outer),
            "reading the cluster identity: client error (Connect): invalid peer certificate: UnknownIssuer"
        );
        let repeats = Layer(
            "tls: bad certificate",
            Some(Box::new(Layer("bad certificate", None))),
        );
        assert_eq!(error_chain(&repeats), "tls: bad certificate");
    }
}
