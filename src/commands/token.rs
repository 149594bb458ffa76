//! `erpd token create --platform`: works beside a running server (platform.db is WAL and
//! the server re-reads tokens on every request).

use std::process::ExitCode;

use serde_json::json;

use crate::auth::token;
use crate::cli::{Cli, TokenCommand};
use crate::platform::store;
use crate::tenancy::lifecycle::Actor;

pub async fn run(cli: &Cli, command: &TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Create { platform: _, name } = command;
    let tenancy = super::tenancy(cli).await?;
    let secret = token::new_platform_token()?;
    let (hash, name, actor) = (token::hash(&secret), name.clone(), Actor::cli());
    let id = tenancy
        .platform
        .write(move |tx| {
            let id = store::insert_platform_token(tx, &name, &hash)?;
            store::record_audit(
                tx,
                &actor.name,
                "platform_token.create",
                None,
                json!({ "token_id": id, "name": name }),
                None,
            )?;
            Ok(id)
        })
        .await?;
    eprintln!("platform token {id} created; it is shown once:");
    println!("{secret}");
    Ok(ExitCode::SUCCESS)
}
