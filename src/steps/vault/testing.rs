pub fn record(_base: &str, _method: &str, _path: &str) {}
