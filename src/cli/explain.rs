//! `reflecto explain CODE`: the catalogue's explanation of one error code, or of an exit status.

use crate::api::{ApiError, ErrorCode, explain_exit_code};
use clap::Args;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// An error code as printed in `error[CODE]` (e.g. rate_limit_exceeded), an exit status
    /// (e.g. 5), or `all` to list every code
    #[arg(value_parser = super::docs::Hinted(super::docs::explain_topics), hide_possible_values = true)]
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
    if let Ok(status) = wanted.parse::<u8>() {
        return match explain_exit_code(status) {
            Some(text) => {
                println!("{text}");
                Ok(())
            }
            None => Err(ApiError::new(
                ErrorCode::UsageError,
                format!(
                    "reflecto never exits with status {status}; `reflecto explain all` lists the error codes"
                ),
            )),
        };
    }
    let Some(code) = ErrorCode::parse(wanted) else {
        return Err(ApiError::new(
            ErrorCode::UsageError,
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
