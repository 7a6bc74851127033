//! `reflecto explain CODE`: the catalogue's explanation of one error code.

use crate::api::{ApiError, ErrorCode};
use clap::Args;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// An error code as printed in `error[CODE]`, e.g. rate_limit_exceeded; `all` lists every code
    pub code: String,
}

pub fn run(args: ExplainArgs) -> Result<(), ApiError> {
    let wanted = args
        .code
        .trim()
        .trim_start_matches("error[")
        .trim_end_matches(']');
    if wanted == "all" {
        for code in ErrorCode::ALL {
            println!(
                "{code}  (HTTP {}, exit {})",
                code.http_status(),
                code.exit_code()
            );
        }
        return Ok(());
    }
    let Some(code) = ErrorCode::parse(wanted) else {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("unknown error code '{wanted}'; `reflecto explain all` lists them"),
        ));
    };
    println!(
        "{code}: HTTP {}, exit code {}\n\n{}",
        code.http_status(),
        code.exit_code(),
        code.explanation()
    );
    Ok(())
}
