//! Command-line flags parsed the way Go's `flag` package (under urfave/cli v2) parses them.

use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    String,
    Bool,
    Int,
    /// Repeatable; each value may also be comma-separated (urfave `StringSliceFlag`).
    StringSlice,
}

/// One flag a command accepts: its canonical name, aliases and kind.
#[derive(Clone, Copy, Debug)]
pub struct FlagSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: FlagKind,
}

impl FlagSpec {
    pub const fn new(name: &'static str, kind: FlagKind) -> Self {
        Self {
            name,
            aliases: &[],
            kind,
        }
    }

    pub const fn aliased(
        name: &'static str,
        aliases: &'static [&'static str],
        kind: FlagKind,
    ) -> Self {
        Self {
            name,
            aliases,
            kind,
        }
    }
}

/// Why parsing failed, worded as Go's `flag` package words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("flag provided but not defined: -{0}")]
    NotDefined(String),
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    #[error("invalid value \"{value}\" for flag -{flag}: parse error")]
    InvalidValue { flag: String, value: String },
}

/// Flags that were set, by canonical name, and the positional arguments left over.
#[derive(Debug, Default, Clone)]
pub struct ParsedFlags {
    values: BTreeMap<&'static str, Vec<String>>,
    pub args: Vec<String>,
}

impl ParsedFlags {
    pub fn parse(specs: &[FlagSpec], argv: &[String]) -> Result<Self, FlagError> {
        let mut parsed = Self::default();
        let mut index = 0;
        while index < argv.len() {
            let arg = &argv[index];
            index += 1;
            if arg == "--" {
                parsed.args.extend(argv[index..].iter().cloned());
                break;
            }
            if !arg.starts_with('-') || arg == "-" {
                // Go's flag package stops at the first positional argument.
                parsed.args.push(arg.clone());
                parsed.args.extend(argv[index..].iter().cloned());
                break;
            }
            let body = arg.trim_start_matches('-');
            let (name, inline) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (body, None),
            };
            let Some(spec) = specs
                .iter()
                .find(|s| s.name == name || s.aliases.contains(&name))
            else {
                return Err(FlagError::NotDefined(name.to_string()));
            };
            let value = match (spec.kind, inline) {
                (FlagKind::Bool, Some(value)) => match value.as_str() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => "true".to_string(),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => "false".to_string(),
                    _ => {
                        return Err(FlagError::InvalidValue {
                            flag: name.to_string(),
                            value,
                        });
                    }
                },
                (FlagKind::Bool, None) => "true".to_string(),
                (_, Some(value)) => value,
                (_, None) => match argv.get(index) {
                    Some(value) => {
                        index += 1;
                        value.clone()
                    }
                    None => return Err(FlagError::MissingValue(name.to_string())),
                },
            };
            if spec.kind == FlagKind::Int && value.parse::<i64>().is_err() {
                return Err(FlagError::InvalidValue {
                    flag: name.to_string(),
                    value,
                });
            }
            parsed.values.entry(spec.name).or_default().push(value);
        }
        Ok(parsed)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The last value given, or `""` like urfave's `c.String` for an unset flag.
    pub fn string(&self, name: &str) -> String {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .cloned()
            .unwrap_or_default()
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        if self.is_set(name) {
            self.string(name)
        } else {
            default.to_string()
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        self.string(name) == "true"
    }

    pub fn int(&self, name: &str) -> i64 {
        self.string(name).parse().unwrap_or(0)
    }

    pub fn slice(&self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        FlagSpec::new("name", FlagKind::String),
        FlagSpec::new("admin", FlagKind::Bool),
        FlagSpec::new("id", FlagKind::Int),
        FlagSpec::new("scopes", FlagKind::StringSlice),
        FlagSpec::aliased("username", &["u"], FlagKind::String),
    ];

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_like_go() {
        let p = ParsedFlags::parse(
            SPECS,
            &argv(&[
                "--name",
                "Dex",
                "-admin",
                "--id=3",
                "--scopes",
                "a,b",
                "--scopes=c",
                "-u",
                "x",
                "rest",
                "--name",
            ]),
        )
        .unwrap();
        assert_eq!(p.string("name"), "Dex");
        assert!(p.bool("admin"));
        assert_eq!(p.int("id"), 3);
        assert_eq!(p.slice("scopes"), ["a", "b", "c"]);
        assert_eq!(p.string("username"), "x");
        assert_eq!(p.args, ["rest", "--name"]);
    }

    #[test]
    fn errors_are_worded_like_go() {
        let err = ParsedFlags::parse(SPECS, &argv(&["--nope"])).unwrap_err();
        assert_eq!(err.to_string(), "flag provided but not defined: -nope");
        let err = ParsedFlags::parse(SPECS, &argv(&["--name"])).unwrap_err();
        assert_eq!(err.to_string(), "flag needs an argument: -name");
        let err = ParsedFlags::parse(SPECS, &argv(&["--id", "x"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"x\" for flag -id: parse error"
        );
    }
}
