//! Which config the agent runs with: `-c FILE`, else /etc/ghostwatch.json if present, else the
//! embedded default that only observes and logs; loading it in place, and refusing a bad one.
//! Must not start anything: a refused config ends `run` with exit 2 before the agent exists.

use crate::config::{self, Config};
use crate::sys;

/// Where `run` looks for a config when no -c is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ghostwatch.json";

/// Which config the agent runs with, and where it came from (for reloads and the start line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    File(String),
    Embedded,
}

impl ConfigSource {
    pub fn describe(&self) -> &str {
        match self {
            ConfigSource::File(p) => p,
            ConfigSource::Embedded => "embedded-default",
        }
    }
}

/// Picks the config: -c FILE, else /etc/ghostwatch.json if it exists, else the embedded default.
pub fn choose_config(path: Option<&str>) -> ConfigSource {
    match path {
        Some(p) => ConfigSource::File(p.to_string()),
        None if sys::CPath::from_bytes(DEFAULT_CONFIG_PATH.as_bytes())
            .and_then(|p| sys::stat(&p))
            .is_ok() =>
        {
            ConfigSource::File(DEFAULT_CONFIG_PATH.to_string())
        }
        None => ConfigSource::Embedded,
    }
}

/// Loads `src`; the error text is `FILE:LINE:COL: message`.
pub fn load_config(src: &ConfigSource) -> Result<Config, String> {
    let mut cfg = Config::default();
    load_config_into(src, &mut cfg)?;
    Ok(cfg)
}

/// `load_config`, filling `cfg` in place (no Config-sized Result and copy on the stack; on
/// Err `cfg` is a mix of old, default and parsed values: don't use it).
pub fn load_config_into(src: &ConfigSource, cfg: &mut Config) -> Result<(), String> {
    match src {
        ConfigSource::File(p) => config::load_into(p, cfg).map_err(|e| e.to_string()),
        ConfigSource::Embedded => {
            cfg.set_embedded_default();
            Ok(())
        }
    }
}

/// Prints why the config is invalid (the `run` and `reload` wording) and returns exit status 2.
pub(super) fn refuse_config(e: &str) -> u8 {
    sys::Out::STDERR.print(format_args!("{e}\n"));
    sys::Out::STDERR.print(format_args!(
        "ghostwatch: refusing to run with an invalid config (check it with 'ghostwatch check -c FILE')\n"
    ));
    2
}
