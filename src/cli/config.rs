//! `reflecto config path`: where the client's profiles and credentials file live, and where a
//! relay on this machine keeps its data, so nobody has to guess platform conventions.

use super::internal;
use crate::api::ApiError;
use crate::credentials::Credentials;
use clap::Subcommand;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the config file, credentials file and relay data directory paths
    Path {
        /// The three paths as one JSON object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Paths {
    config: PathBuf,
    credentials: PathBuf,
    data_dir: PathBuf,
}

fn paths() -> Paths {
    let creds = Credentials::from_env();
    Paths {
        config: creds.profiles_path(),
        credentials: creds.credentials_path(),
        data_dir: std::env::var_os("REFLECTO_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(crate::relay::config::default_data_dir),
    }
}

pub fn path(json: bool) -> Result<(), ApiError> {
    let p = paths();
    if json {
        let text = serde_json::to_string_pretty(&p).map_err(|e| internal("rendering JSON", e))?;
        println!("{text}");
        return Ok(());
    }
    println!("config\t{}", p.config.display());
    println!("credentials\t{}", p.credentials.display());
    println!("data_dir\t{}", p.data_dir.display());
    Ok(())
}
