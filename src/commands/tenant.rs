//! `erpd tenant …`: the lifecycle from the command line.

use std::process::ExitCode;

use crate::cli::{Cli, TenantCommand};
use crate::platform::model::{NewTenant, TenantRecord, TenantStatus};
use crate::tenancy::TenantId;
use crate::tenancy::lifecycle::Actor;

pub async fn run(cli: &Cli, command: &TenantCommand) -> anyhow::Result<ExitCode> {
    let tenancy = super::tenancy(cli).await?;
    let actor = Actor::cli();
    match command {
        TenantCommand::Create {
            id,
            name,
            base_currency,
            owner_email,
        } => {
            let new = NewTenant::parse(id, name, base_currency, None, owner_email.clone())?;
            let (record, token) = tenancy.create_tenant(new, &actor).await?;
            eprintln!(
                "tenant {} created; its owner token is shown once:",
                record.id
            );
            println!("{token}");
        }
        TenantCommand::List => {
            let mut after = None;
            println!(
                "{:<24} {:<10} {:<4} {:>6} {:>12}  name",
                "id", "status", "cur", "schema", "bytes"
            );
            loop {
                let page = tenancy.list_tenants(after.clone(), 500).await?;
                for r in &page {
                    print_row(&tenancy, r);
                }
                match page.last() {
                    Some(r) if page.len() == 500 => after = Some(r.id.to_string()),
                    _ => break,
                }
            }
        }
        TenantCommand::Show { id } => {
            let r = tenancy.get_tenant(&TenantId::parse(id)?).await?;
            print_row(&tenancy, &r);
            println!(
                "created_at {}  updated_at {}  modules {}",
                r.created_at,
                r.updated_at,
                r.modules.join(",")
            );
            if let Some(t) = &r.trash_file {
                println!("trash_file {t}");
            }
        }
        TenantCommand::Suspend { id } => {
            let r = tenancy
                .update_tenant(
                    &TenantId::parse(id)?,
                    None,
                    None,
                    Some(TenantStatus::Suspended),
                    &actor,
                )
                .await?;
            println!("tenant {} is {}", r.id, r.status.as_str());
        }
        TenantCommand::Resume { id } => {
            let r = tenancy
                .update_tenant(
                    &TenantId::parse(id)?,
                    None,
                    None,
                    Some(TenantStatus::Active),
                    &actor,
                )
                .await?;
            println!("tenant {} is {}", r.id, r.status.as_str());
        }
        TenantCommand::Delete { id } => {
            super::require_offline(&tenancy.layout)?;
            let id = TenantId::parse(id)?;
            tenancy.delete_tenant(&id, None, &actor).await?;
            println!("tenant {id} moved to the trash; `erpd tenant restore {id}` brings it back");
        }
        TenantCommand::Restore { id } => {
            super::require_offline(&tenancy.layout)?;
            let r = tenancy
                .restore_tenant(&TenantId::parse(id)?, &actor)
                .await?;
            println!("tenant {} restored", r.id);
        }
        TenantCommand::Purge { id } => {
            let id = TenantId::parse(id)?;
            let removed = tenancy.purge_trash(None, Some(&id), &actor).await?;
            for f in &removed {
                println!("purged {}", f.display());
            }
            println!("{id}: {} trash file(s) purged", removed.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_row(tenancy: &crate::tenancy::Tenancy, r: &TenantRecord) {
    println!(
        "{:<24} {:<10} {:<4} {:>6} {:>12}  {}",
        r.id.as_str(),
        r.status.as_str(),
        r.base_currency,
        r.schema_version,
        tenancy.size_bytes(&r.id),
        r.name
    );
}
