//! The data directory: the member key, the config file and the store.
//!
//! Resolved from `--home`, else `$CATCHMENT_HOME`, else the platform's data directory. The key
//! file is written once, with mode 0600, and never overwritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use catchment_crdt::Keypair;
use serde::{Deserialize, Serialize};
use thiserror::Error;

const KEY_FILE: &str = "member.key";
const CONFIG_FILE: &str = "config.toml";
const STORE_DIR: &str = "store";
const DEVICE_KEY_FILE: &str = "device.key";
const TOKEN_FILE: &str = "api.token";
const ENDPOINT_FILE: &str = "api.json";

/// A problem with the data directory.
#[derive(Debug, Error)]
pub enum HomeError {
    /// No directory was given and the platform has none.
    #[error("no data directory: pass --home or set CATCHMENT_HOME")]
    NoPlatformDir,
    /// Not initialised yet.
    #[error("no Catchment identity in {0}: run `catchment init` first")]
    NotInitialised(String),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// Which file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The key file does not hold a key.
    #[error("{0}: not a Catchment key file (expected 64 hex digits)")]
    BadKey(String),
    /// The config file does not parse.
    #[error("{path}: {reason}")]
    BadConfig {
        /// Which file.
        path: String,
        /// What the parser said.
        reason: String,
    },
}

fn io_error(path: &Path, e: std::io::Error) -> HomeError {
    HomeError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The settings in `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The display name shown beside this member's key.
    pub name: String,
    /// A line about this member.
    pub about: String,
    /// How `catchment up` uses the network (`[network]`); its flags add to these.
    pub network: NetworkSettings,
}

/// The `[network]` table of `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSettings {
    /// Find peers on the LAN with mDNS (`false`: as `--no-mdns`).
    pub mdns: bool,
    /// Run as a seed (as `--seed`).
    pub seed: bool,
    /// Offer the relay service to others (as `--relay`).
    pub relay: bool,
    /// Listen addresses, used when no `--listen` is given.
    pub listen: Vec<String>,
    /// Addresses to dial at start, besides any `--dial`.
    pub dial: Vec<String>,
    /// Addresses where others reach this node, besides any `--external`.
    pub external: Vec<String>,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            mdns: true,
            seed: false,
            relay: false,
            listen: Vec::new(),
            dial: Vec::new(),
            external: Vec::new(),
        }
    }
}

/// Where a running node's local API listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The API's port on 127.0.0.1.
    pub port: u16,
    /// The node's process id.
    pub pid: u32,
}

/// An initialised data directory.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// Which directory to use: the explicit one, `$CATCHMENT_HOME`, or the platform's.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf, HomeError> {
        if let Some(dir) = explicit {
            return Ok(dir);
        }
        if let Some(dir) = std::env::var_os("CATCHMENT_HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        directories::ProjectDirs::from("org", "Catchment", "catchment")
            .map(|p| p.data_dir().to_path_buf())
            .ok_or(HomeError::NoPlatformDir)
    }

    /// Creates the directory, a key (unless one exists) and a config (unless one exists).
    /// Returns the home and whether a new key was made.
    pub fn init(dir: &Path, name: Option<&str>) -> Result<(Home, bool), HomeError> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let key_path = dir.join(KEY_FILE);
        let created = if key_path.exists() {
            false
        } else {
            write_private(
                &key_path,
                &format!("{}\n", hex::encode(Keypair::generate().to_bytes())),
            )?;
            true
        };
        let home = Home {
            dir: dir.to_path_buf(),
        };
        let config_path = dir.join(CONFIG_FILE);
        if !config_path.exists() {
            let config = Config {
                name: name.unwrap_or_default().to_string(),
                ..Config::default()
            };
            home.save_config(&config)?;
        } else if let Some(name) = name {
            let mut config = home.config()?;
            config.name = name.to_string();
            home.save_config(&config)?;
        }
        home.keypair()?;
        Ok((home, created))
    }

    /// Opens an initialised directory.
    pub fn open(dir: &Path) -> Result<Home, HomeError> {
        if !dir.join(KEY_FILE).exists() {
            return Err(HomeError::NotInitialised(dir.display().to_string()));
        }
        Ok(Home {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the store lives.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join(STORE_DIR)
    }

    /// The member key.
    pub fn keypair(&self) -> Result<Keypair, HomeError> {
        let path = self.dir.join(KEY_FILE);
        let text = fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret)
            .map_err(|_| HomeError::BadKey(path.display().to_string()))?;
        Ok(Keypair::from_bytes(&secret))
    }

    /// The device's transport key (32 secret bytes), separate from the member key so that the
    /// network layer does not reveal who is a member. Made on first use.
    pub fn device_key(&self) -> Result<[u8; 32], HomeError> {
        self.secret_file(DEVICE_KEY_FILE)
    }

    /// The local API's token, made on first use; the file is readable by its owner only.
    pub fn api_token(&self) -> Result<String, HomeError> {
        Ok(hex::encode(self.secret_file(TOKEN_FILE)?))
    }

    fn secret_file(&self, name: &str) -> Result<[u8; 32], HomeError> {
        let path = self.dir.join(name);
        if !path.exists() {
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            match write_private(&path, &format!("{}\n", hex::encode(secret))) {
                Ok(()) => {}
                // Another process made it first: read theirs.
                Err(_) if path.exists() => {}
                Err(e) => return Err(e),
            }
        }
        let text = fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret)
            .map_err(|_| HomeError::BadKey(path.display().to_string()))?;
        Ok(secret)
    }

    /// Records where the running node's API listens.
    pub fn write_endpoint(&self, endpoint: &Endpoint) -> Result<(), HomeError> {
        let path = self.dir.join(ENDPOINT_FILE);
        let tmp = self.dir.join(format!("{ENDPOINT_FILE}.tmp"));
        let text = serde_json::to_string(endpoint).expect("endpoint serialises");
        fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))
    }

    /// Where a running node's API listens, if one said so.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let text = fs::read_to_string(self.dir.join(ENDPOINT_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Forgets the endpoint (the node stopped).
    pub fn clear_endpoint(&self) {
        let _ = fs::remove_file(self.dir.join(ENDPOINT_FILE));
    }

    /// The config.
    pub fn config(&self) -> Result<Config, HomeError> {
        let path = self.dir.join(CONFIG_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| HomeError::BadConfig {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Saves the config.
    pub fn save_config(&self, config: &Config) -> Result<(), HomeError> {
        let path = self.dir.join(CONFIG_FILE);
        let text = toml::to_string(config).expect("config always serialises");
        let tmp = self.dir.join(format!("{CONFIG_FILE}.tmp"));
        fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))
    }
}

/// Writes a new file that only its owner may read, whole or not at all: the contents go to a
/// temporary file first, which is then linked into place (failing if the file exists, so a key
/// is never overwritten).
fn write_private(path: &Path, contents: &str) -> Result<(), HomeError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(|e| io_error(&tmp, e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| io_error(&tmp, e))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    fs::hard_link(&tmp, path).map_err(|e| io_error(path, e))?;
    fs::remove_file(&tmp).map_err(|e| io_error(&tmp, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_keeps_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (home, created) = Home::init(dir.path(), Some("Ada")).unwrap();
        assert!(created);
        let first = home.keypair().unwrap().member_id();
        let (home, created) = Home::init(dir.path(), None).unwrap();
        assert!(!created);
        assert_eq!(home.keypair().unwrap().member_id(), first);
        assert_eq!(home.config().unwrap().name, "Ada");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn open_before_init_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = Home::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("catchment init"), "{err}");
    }
}
