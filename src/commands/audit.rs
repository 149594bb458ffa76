//! `erpd audit verify ID`: recompute the tenant's audit hash chain from its file.

use std::process::ExitCode;

use crate::cli::{AuditCommand, Cli};
use crate::config::Config;
use crate::tenancy::TenantId;

pub async fn run(cli: &Cli, command: &AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { id } = command;
    let id = TenantId::parse(id)?;
    let (layout, _) = Config::common(cli)?;
    let path = layout.tenant_file(&id);
    if !path.is_file() {
        anyhow::bail!("no file for tenant {id} at {}", path.display());
    }
    let result = crate::db::blocking(move || {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&path, flags)?;
        crate::audit::verify(&conn)
    })
    .await?;
    match result.first_broken {
        None => {
            println!("{id}: audit chain intact ({} entries)", result.entries);
            Ok(ExitCode::SUCCESS)
        }
        Some(entry) => {
            println!(
                "{id}: audit chain BROKEN at entry {entry} (edited, inserted or a predecessor removed)"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
